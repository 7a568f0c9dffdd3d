"""Sign-in links, their rate limits and sessions in the audit store. Only digests of their secrets
are stored: a copy of the store signs nobody in."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsaudit.store.schema import web_login_requests, web_logins, web_sessions
from opsaudit.store.times import from_db, to_db
from opsaudit.web.security import digest

LINK_LIFETIME = timedelta(minutes=15)
IDLE_TIMEOUT = timedelta(hours=8)
# last_seen_at is written at most this often, so reading pages stays reading.
SEEN_EVERY = timedelta(minutes=1)
# Requests for a link within the window: per address asked for, and per client.
LIMIT_WINDOW = timedelta(minutes=15)
PER_ADDRESS = 5
PER_CLIENT = 20


def allow_link_request(conn: Connection, address: str, client: str, now: datetime) -> bool:
    """Whether a request for a link to `address` from `client` is within both limits, counted over
    every process on this store; an allowed request is counted, and requests older than the window
    are deleted. Known and unknown addresses count alike, so being limited tells nothing either."""
    requests = web_login_requests.c
    since = to_db(now - LIMIT_WINDOW)
    address_hash = digest(address)
    _one_request_at_a_time(conn, address_hash, client)
    # Recorded before it is counted: on SQLite the insert takes the write lock, so a request at the
    # same moment waits here and then counts this one.
    request_id = conn.execute(web_login_requests.insert().values(
        requested_at=to_db(now), address_hash=address_hash, client=client).returning(requests.id)).scalar_one()
    per_address, per_client = conn.execute(
        sa.select(sa.func.count().filter(requests.address_hash == address_hash),
                  sa.func.count().filter(requests.client == client))
        .where(requests.requested_at > since,
               sa.or_(requests.address_hash == address_hash, requests.client == client))).one()
    allowed = per_address <= PER_ADDRESS and per_client <= PER_CLIENT
    if not allowed:
        conn.execute(web_login_requests.delete().where(requests.id == request_id))
    conn.execute(web_login_requests.delete().where(requests.requested_at <= since))
    return allowed


def _one_request_at_a_time(conn: Connection, address_hash: str, client: str) -> None:
    """On PostgreSQL, requests for one address or from one client wait for each other until commit,
    so two at once cannot both be counted under the limit (SQLite's single writer does this)."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({f"address:{address_hash}", f"client:{client}"}):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(key))))


def issue_link(conn: Connection, staff_id: str, now: datetime) -> str:
    """A new one-time sign-in token for staff_id; the store keeps its digest only."""
    token = secrets.token_urlsafe(32)
    conn.execute(web_logins.insert().values(token_hash=digest(token), staff_id=staff_id, created_at=to_db(now),
                                            expires_at=to_db(now + LINK_LIFETIME)))
    return token


def redeem_link(conn: Connection, token: str, now: datetime) -> str | None:
    """The staff_id a valid, unused, unexpired link names, spent now; None for any other token."""
    row = conn.execute(sa.select(web_logins).where(web_logins.c.token_hash == digest(token))).mappings().first()
    if row is None or row["used_at"] is not None or from_db(row["expires_at"]) <= now:
        return None
    # Conditional on still being unused: two clicks at once sign in once.
    spent = conn.execute(web_logins.update().where(web_logins.c.token_hash == row["token_hash"],
                                                   web_logins.c.used_at.is_(None)).values(used_at=to_db(now)))
    return row["staff_id"] if spent.rowcount == 1 else None


def start_session(conn: Connection, staff_id: str, now: datetime) -> str:
    """A new session id for staff_id (what the signed cookie carries)."""
    session_id = secrets.token_urlsafe(32)
    conn.execute(web_sessions.insert().values(id_hash=digest(session_id), staff_id=staff_id, created_at=to_db(now),
                                              last_seen_at=to_db(now)))
    return session_id


def resume_session(conn: Connection, session_id: str, now: datetime) -> str | None:
    """The staff_id of a live session, its idle clock restarted; None when ended or idle too long."""
    row = conn.execute(sa.select(web_sessions).where(web_sessions.c.id_hash == digest(session_id))).mappings().first()
    if row is None or row["ended_at"] is not None:
        return None
    seen = from_db(row["last_seen_at"])
    if seen + IDLE_TIMEOUT <= now:
        end_session(conn, session_id, now)
        return None
    if seen + SEEN_EVERY <= now:
        conn.execute(web_sessions.update().where(web_sessions.c.id_hash == row["id_hash"])
                     .values(last_seen_at=to_db(now)))
    return row["staff_id"]


def end_session(conn: Connection, session_id: str, now: datetime) -> None:
    conn.execute(web_sessions.update().where(web_sessions.c.id_hash == digest(session_id),
                                             web_sessions.c.ended_at.is_(None)).values(ended_at=to_db(now)))


def end_sessions_of(conn: Connection, staff_id: str, now: datetime) -> None:
    """Every session of a person who may no longer sign in (made inactive, gone from the staff table)."""
    conn.execute(web_sessions.update().where(web_sessions.c.staff_id == staff_id, web_sessions.c.ended_at.is_(None))
                 .values(ended_at=to_db(now)))
