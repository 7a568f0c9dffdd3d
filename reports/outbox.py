"""The mail outbox in the audit store: every message is written here first, then delivered.

A message is enqueued once per dedupe key, in the caller's transaction, so a rerun never mails
twice. Delivery claims a message (status `sending`) before it talks to the SMTP server and marks
it `sent` right after the server accepted it; a claim is atomic, so two senders never both send.
A recipient the server refused is kept on the message's recipient (`refused`, the server's reply),
so a list shows who did not get it and later attempts leave that recipient out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.db import unsupported_store
from opsaudit.i18n.render import Message
from opsaudit.store.schema import outbox
from opsaudit.store.times import from_db, to_db, utcnow

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
Kind = Literal["report", "alert", "notice"]
KINDS: tuple[str, ...] = ("report", "alert", "notice")


@dataclass(frozen=True)
class Address:
    """One recipient of a message: the address, and the person behind it when known;
    `refused`: the server's reply when it refused this recipient."""

    email: str
    name: str | None = None
    staff_id: str | None = None
    refused: str | None = None

    def as_json(self) -> dict[str, str | None]:
        """The recipient as stored and listed; `refused` only once the server refused it."""
        stored = {"email": self.email, "name": self.name, "staff_id": self.staff_id}
        return stored | ({"refused": self.refused} if self.refused is not None else {})


@dataclass(frozen=True)
class OutgoingMail:
    """A message to enqueue. `dedupe_key` names what it is about (e.g. `alert:<finding id>`)."""

    dedupe_key: str
    kind: Kind
    recipients: tuple[Address, ...]
    subject: str
    body_text: str
    body_html: str | None = None
    attachments: tuple[Path, ...] = ()


@dataclass(frozen=True)
class MailSummary:
    """A message as the outbox holds it, without its bodies (what lists show)."""

    id: int
    dedupe_key: str
    kind: str
    status: str
    recipients: tuple[Address, ...]
    subject: str
    attachments: tuple[Path, ...]
    attempts: int
    created_at: datetime
    last_error: str | None = None
    sent_at: datetime | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None

    @classmethod
    def from_row(cls, row: RowMapping) -> MailSummary:
        return cls(**_summary_fields(row))

    @property
    def refused(self) -> dict[str, str]:
        """The recipients the server refused, with its reply."""
        return {address.email: address.refused for address in self.recipients if address.refused is not None}

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        """The message without its bodies, times in `zone` (what `opsaudit outbox list --format json` prints)."""
        def moment(value: datetime | None) -> str | None:
            return value.astimezone(zone).isoformat() if value else None

        return {"id": self.id, "dedupe_key": self.dedupe_key, "kind": self.kind, "status": self.status,
                "recipients": [address.as_json() for address in self.recipients], "subject": self.subject,
                "attachments": [str(path) for path in self.attachments], "attempts": self.attempts,
                "created_at": moment(self.created_at), "last_attempt_at": moment(self.last_attempt_at),
                "next_attempt_at": moment(self.next_attempt_at), "sent_at": moment(self.sent_at),
                "last_error": self.last_error}


@dataclass(frozen=True, kw_only=True)
class StoredMail(MailSummary):
    """A message with its bodies, as delivery sends it."""

    body_text: str
    body_html: str | None

    @classmethod
    def from_row(cls, row: RowMapping) -> StoredMail:
        return cls(**_summary_fields(row), body_text=row["body_text"], body_html=row["body_html"])


_SUMMARY_COLUMNS = [column for column in outbox.c if column.name not in ("body_text", "body_html")]


def _summary_fields(row: RowMapping) -> dict[str, Any]:
    return dict(
        id=row["id"], dedupe_key=row["dedupe_key"], kind=row["kind"], status=row["status"],
        recipients=tuple(Address(r["email"], r.get("name"), r.get("staff_id"), r.get("refused"))
                         for r in row["recipients"]),
        subject=row["subject"], attachments=tuple(Path(p) for p in row["attachments"]), attempts=row["attempts"],
        created_at=from_db(row["created_at"]), last_error=row["last_error"], sent_at=from_db(row["sent_at"]),
        last_attempt_at=from_db(row["last_attempt_at"]), next_attempt_at=from_db(row["next_attempt_at"]))


def _check(mail: OutgoingMail) -> None:
    """Refuse a message that could never be delivered, before it is stored."""
    if mail.kind not in KINDS:
        raise ValueError(f"outbox: kind {mail.kind!r} is not one of {', '.join(KINDS)}")
    if not mail.dedupe_key or len(mail.dedupe_key) > outbox.c.dedupe_key.type.length:
        raise ValueError("outbox: the dedupe key must have 1 to 255 characters")
    if not mail.recipients:
        raise ValueError(f"outbox: {mail.dedupe_key}: no recipient")
    for address in mail.recipients:
        if not is_address(address.email):
            raise ValueError(f"outbox: {mail.dedupe_key}: {address.email!r} is not an e-mail address")
    if not mail.subject.strip() or "\n" in mail.subject or "\r" in mail.subject:
        raise ValueError(f"outbox: {mail.dedupe_key}: the subject must be one non-empty line")


def is_address(text: str) -> bool:
    """Whether text is a bare e-mail address (local@domain, no spaces or display name)."""
    _, parsed = parseaddr(text)
    local, at, domain = parsed.rpartition("@")
    return parsed == text and bool(local and at and domain) and not any(c.isspace() for c in text)


def _insert_once(dialect: str):
    """An INSERT that does nothing when the dedupe key is already there (both store databases)."""
    builders = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if dialect not in builders:
        raise unsupported_store(Message.of("error.store.outbox"), dialect)
    return builders[dialect](outbox).on_conflict_do_nothing(index_elements=["dedupe_key"])


def enqueue(conn: Connection, mail: OutgoingMail, *, now: datetime | None = None) -> int:
    """Write mail to the outbox as pending and return its id. A second enqueue of the same
    dedupe key changes nothing and returns the first message's id."""
    _check(mail)
    values = {
        "dedupe_key": mail.dedupe_key, "kind": mail.kind, "created_at": to_db(now or utcnow()),
        "recipients": [address.as_json() for address in mail.recipients], "subject": mail.subject,
        "body_text": mail.body_text, "body_html": mail.body_html,
        "attachments": [str(Path(path).expanduser().resolve()) for path in mail.attachments],
        "status": PENDING, "attempts": 0,
    }
    conn.execute(_insert_once(conn.dialect.name).values(**values))
    return conn.execute(sa.select(outbox.c.id).where(outbox.c.dedupe_key == mail.dedupe_key)).scalar_one()


def get(conn: Connection, message_id: int) -> StoredMail | None:
    row = conn.execute(sa.select(outbox).where(outbox.c.id == message_id)).mappings().first()
    return StoredMail.from_row(row) if row else None


def list_mail(conn: Connection, *, status: str | None = None, ids: Iterable[int] | None = None) -> list[MailSummary]:
    """Messages without their bodies in the order they were enqueued, optionally of one status or among ids."""
    query = sa.select(*_SUMMARY_COLUMNS).order_by(outbox.c.id)
    if status is not None:
        query = query.where(outbox.c.status == status)
    if ids is not None:
        query = query.where(outbox.c.id.in_(list(ids)))
    return [MailSummary.from_row(row) for row in conn.execute(query).mappings()]


def due(conn: Connection, now: datetime) -> list[int]:
    """Ids of the pending messages whose next attempt is not in the future, oldest first."""
    return list(conn.execute(
        sa.select(outbox.c.id).where(outbox.c.status == PENDING, _is_due(now)).order_by(outbox.c.id)).scalars())


def _is_due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= to_db(now))


def claim(conn: Connection, message_id: int, now: datetime) -> StoredMail | None:
    """Take a due pending message for sending and count the attempt; None if it is not (or no
    longer) due and pending, e.g. because another sender claimed it first."""
    claimed = conn.execute(
        outbox.update().where(outbox.c.id == message_id, outbox.c.status == PENDING, _is_due(now))
        .values(status=SENDING, attempts=outbox.c.attempts + 1, last_attempt_at=to_db(now)))
    return get(conn, message_id) if claimed.rowcount == 1 else None


def mark_sent(conn: Connection, message_id: int, now: datetime, *, refused: Mapping[str, str] | None = None) -> None:
    """The SMTP server accepted the message; `refused`: the recipients it refused (address: reply)."""
    values: dict[str, Any] = dict(status=SENT, sent_at=to_db(now), next_attempt_at=None, last_error=None)
    if refused:
        values["recipients"] = _with_refusals(conn, message_id, refused)
    conn.execute(outbox.update().where(outbox.c.id == message_id).values(**values))


def mark_attempt_failed(conn: Connection, message_id: int, error: str, *, retry_at: datetime | None,
                        refused: Mapping[str, str] | None = None) -> None:
    """Record a failed attempt of a claimed message: pending again until retry_at, or failed
    for good when retry_at is None. `refused`: recipients the server refused, left out from now on."""
    values: dict[str, Any] = {"last_error": error[:2000]}
    if retry_at is None:
        values.update(status=FAILED, next_attempt_at=None)
    else:
        values.update(status=PENDING, next_attempt_at=to_db(retry_at))
    if refused:
        values["recipients"] = _with_refusals(conn, message_id, refused)
    conn.execute(outbox.update().where(outbox.c.id == message_id, outbox.c.status == SENDING).values(**values))


def _with_refusals(conn: Connection, message_id: int, refused: Mapping[str, str]) -> list[dict[str, Any]]:
    """The message's stored recipients with the server's reply on each one it refused."""
    stored = conn.execute(sa.select(outbox.c.recipients).where(outbox.c.id == message_id)).scalar_one()
    return [r | {"refused": refused[r["email"]][:500]} if r["email"] in refused else r for r in stored]


def requeue_failed(conn: Connection, ids: Sequence[int] | None = None) -> list[int]:
    """Put failed messages (all, or those among ids) back in the queue for a new round of attempts,
    to every recipient again: a person asked, e.g. once a refused mailbox exists."""
    query = sa.select(outbox.c.id, outbox.c.recipients).where(outbox.c.status == FAILED)
    if ids is not None:
        query = query.where(outbox.c.id.in_(list(ids)))
    found = conn.execute(query.order_by(outbox.c.id)).all()
    for message_id, recipients in found:
        conn.execute(outbox.update().where(outbox.c.id == message_id, outbox.c.status == FAILED).values(
            status=PENDING, attempts=0, next_attempt_at=None,
            recipients=[{k: v for k, v in r.items() if k != "refused"} for r in recipients]))
    return [message_id for message_id, _ in found]


def make_due(conn: Connection, ids: Sequence[int] | None = None) -> int:
    """Make the pending messages (all, or those among ids) due now, whatever their backoff said:
    a person asked to retry. Returns how many were waiting."""
    query = outbox.update().where(outbox.c.status == PENDING, outbox.c.next_attempt_at.is_not(None))
    if ids is not None:
        query = query.where(outbox.c.id.in_(list(ids)))
    return conn.execute(query.values(next_attempt_at=None)).rowcount


def fail_stale_claims(conn: Connection, now: datetime, lease: timedelta) -> list[int]:
    """Mark failed the messages claimed longer ago than lease: their sender stopped mid-delivery.
    They may or may not have reached the server, so they are not sent again without a person's
    `opsaudit outbox retry`."""
    cutoff = to_db(now - lease)
    stale = list(conn.execute(sa.select(outbox.c.id).where(
        outbox.c.status == SENDING, outbox.c.last_attempt_at < cutoff)).scalars())
    if stale:
        conn.execute(outbox.update().where(outbox.c.id.in_(stale), outbox.c.status == SENDING).values(
            status=FAILED, next_attempt_at=None,
            last_error="delivery was interrupted while sending (the sending process stopped); the message may "
                       "have reached the server: check with its recipients before `opsaudit outbox retry`"))
    return stale
