"""What every request needs: the app's resources (`Web`), who is asking (`Visitor`), in which
language, and the pages' rendering. Sessions are resumed here, so a person made inactive in the
staff table is signed out on their next request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine, RowMapping

from opsaudit.config.loader import Config
from opsaudit.i18n import LANGUAGES, format_value, text
from opsaudit.reports.recipients import Directory, Person
from opsaudit.settings import Settings
from opsaudit.source import Source
from opsaudit.store.roles import Role, holders, roles_of
from opsaudit.web import security, sessions

SESSION_COOKIE = "opsaudit_session"
PRE_COOKIE = "opsaudit_pre"  # before signing in: what the sign-in form's CSRF token is tied to
LANGUAGE_COOKIE = "opsaudit_lang"
TEMPLATES = Path(__file__).resolve().parent / "templates"
# How long pages may show the staff and departments tables as they were: reading 2,000 people
# takes longer than the rest of a page. An action, a sign-in and an unknown person read them anew,
# and whether the visitor is still active is read on every request.
DIRECTORY_AGE = timedelta(seconds=30)


@dataclass
class Web:
    """The app's resources, made once at start-up: the configuration, the templates, and the
    directory kept for DIRECTORY_AGE."""

    settings: Settings
    store: Engine
    source: Source
    key: bytes
    clock: Callable[[], datetime]
    config: Config
    templates: Jinja2Templates = field(default_factory=lambda: Jinja2Templates(directory=str(TEMPLATES)))
    _kept: tuple[datetime, Directory] | None = field(default=None, init=False, repr=False)

    def directory(self, *, fresh: bool = False) -> Directory:
        """The staff and departments tables: as read at most DIRECTORY_AGE ago (by the app's clock),
        or read now (two reads) when `fresh` or older."""
        now = self.clock()
        kept = self._kept  # one read of the attribute: another thread may replace it meanwhile
        if fresh or kept is None or not kept[0] <= now < kept[0] + DIRECTORY_AGE:
            kept = (now, Directory.load(self.source, self.settings))
            self._kept = kept
        return kept[1]

    def still_active(self, staff_id: str) -> bool:
        """Whether the staff table has staff_id as active now (one read): a person made inactive is
        signed out at once, whatever the kept directory says."""
        staff = self.source.table("staff")
        with self.source.engine.connect() as conn:
            active = conn.execute(sa.select(staff.c.active).where(staff.c.staff_id == staff_id)).scalar()
        return bool(active)

    def now(self) -> datetime:
        return self.clock().astimezone(self.settings.tz)


@dataclass(frozen=True)
class Visitor:
    """The signed-in person, what they may see, and the token their forms carry."""

    person: Person
    directory: Directory
    language: str
    csrf: str

    @property
    def staff_id(self) -> str:
        return self.person.staff_id

    @property
    def sees_all(self) -> bool:
        """interface.md: the operations department's staff and the executives see every finding."""
        return self.person.role == "executive" or \
            self.person.department_id in self.directory.operations_departments()

    @property
    def is_audit_lead(self) -> bool:
        lead = self.directory.audit_lead()
        return lead is not None and lead.staff_id == self.staff_id

    @property
    def may_record(self) -> bool:
        """Whether the visitor may record a problem found by hand (`findings add`): an auditor of
        the operations department, as `store.roles` finds them."""
        return Role.AUDITOR in self.standing_roles

    @cached_property
    def standing_roles(self) -> frozenset[Role]:
        """The roles held whatever the finding (operations manager, deputy, auditor, executive):
        found once, since each is a pass over every person."""
        return roles_of(self.directory, self.staff_id, owner_id=None, department_id=None)

    def roles_on(self, row: RowMapping) -> frozenset[Role]:
        """Every role the visitor holds for the finding, as `roles.roles_of` finds them: the
        standing ones, and owner and department head, which are looked up by id."""
        party = {"owner_id": row["owner_id"], "department_id": row["department_id"]}
        own = {role for role in (Role.OWNER, Role.DEPARTMENT_HEAD)
               if any(person.staff_id == self.staff_id for person in holders(self.directory, role, **party))}
        return self.standing_roles | own


class SignInRequired(Exception):
    """A page asked for without a session: the answer is the sign-in page."""


class NotFound(Exception):
    """Nothing there, or nothing this person may see: the same 404 either way."""


def web_of(request: Request) -> Web:
    return request.app.state.web


def language_of(request: Request) -> str:
    """The person's choice (remembered in a cookie), else OPSAUDIT_LANGUAGE."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else web_of(request).settings.language


def set_cookie(request: Request, name: str, value: str | None, *, max_age: int | None = None) -> None:
    """A cookie for the response (applied by the app's middleware); None deletes it."""
    request.state.cookies = [*getattr(request.state, "cookies", []), (name, value, max_age)]


def current(request: Request) -> Visitor | None:
    """The signed-in person, by session cookie or by the trusted single sign-on header; None if nobody."""
    web = web_of(request)
    directory = web.directory()
    now = web.now()
    session_id = security.unsign(web.key, "session", request.cookies.get(SESSION_COOKIE))
    with web.store.begin() as conn:
        staff_id = sessions.resume_session(conn, session_id, now) if session_id else None
        vouched, named = _trusted_person(request, web, directory)
        if vouched and named is None:  # someone the kept directory does not know yet: read it anew
            directory = web.directory(fresh=True)
            vouched, named = _trusted_person(request, web, directory)
        if vouched and named is None:  # the proxy names nobody who may sign in: its word goes
            return None
        if named is not None and named.staff_id != staff_id:
            session_id, staff_id = sessions.start_session(conn, named.staff_id, now), named.staff_id
            set_cookie(request, SESSION_COOKIE, security.sign(web.key, "session", session_id))
        active = bool(staff_id) and web.still_active(staff_id or "")
        person = directory.people.get(staff_id or "")
        if active and (person is None or not person.active):  # the kept directory is behind
            directory = web.directory(fresh=True)
            person = directory.people.get(staff_id or "")
        if staff_id and not active:
            sessions.end_sessions_of(conn, staff_id, now)
            return None
    if person is None or session_id is None:
        return None
    return Visitor(person, directory, language_of(request), security.mac(web.key, "csrf", session_id))


def client_address(request: Request) -> str:
    """Where a request came from, for the sign-in limits: the peer, or behind a trusted proxy the
    nearest address it forwarded for that is not a trusted proxy itself (an untrusted peer's
    X-Forwarded-For is anyone's word, and ignored)."""
    peer = request.client.host if request.client else "unknown"
    trusted = request.app.state.trusted
    if not security.is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    return next((hop for hop in reversed(hops) if not security.is_trusted(hop, trusted)), peer)


def _trusted_person(request: Request, web: Web, directory: Directory) -> tuple[bool, Person | None]:
    """(whether a trusted proxy names someone, the active person it names): only
    OPSAUDIT_WEB_TRUSTED_HEADER (staff_id or e-mail), only straight from OPSAUDIT_WEB_TRUSTED_PROXIES."""
    header = web.settings.web_trusted_header
    if not header or not security.is_trusted(request.client.host if request.client else None,
                                             request.app.state.trusted):
        return False, None
    named = (request.headers.get(header) or "").strip()
    return (True, find_person(directory, named)) if named else (False, None)


def find_person(directory: Directory, named: str) -> Person | None:
    """The active person with this staff_id or e-mail address (any case)."""
    person = directory.people.get(named)
    if person is None:
        wanted = named.casefold()
        person = next((p for p in directory.people.values() if p.email and p.email.casefold() == wanted), None)
    return person if person is not None and person.active else None


def visitor(request: Request) -> Visitor:
    """The dependency of every page behind the sign-in."""
    found = current(request)
    if found is None:
        raise SignInRequired()
    return found


def pre_token(request: Request) -> str:
    """The CSRF token of a form shown before signing in, tied to a random cookie of this browser."""
    web = web_of(request)
    pre = security.unsign(web.key, "pre", request.cookies.get(PRE_COOKIE))
    if pre is None:
        import secrets

        pre = secrets.token_urlsafe(24)
        set_cookie(request, PRE_COOKIE, security.sign(web.key, "pre", pre))
    return security.mac(web.key, "pre-csrf", pre)


def check_pre_token(request: Request, given: str | None) -> bool:
    web = web_of(request)
    pre = security.unsign(web.key, "pre", request.cookies.get(PRE_COOKIE))
    return pre is not None and security.same(given, security.mac(web.key, "pre-csrf", pre))


def _here(request: Request) -> str:
    """The page's path and query: where switching the language returns to, filters kept."""
    return f"{request.url.path}?{request.url.query}" if request.url.query else request.url.path


def render(request: Request, template: str, language: str, *, visitor: Visitor | None = None,
           status: int = 200, **values: Any) -> HTMLResponse:
    """A page in `language`: every text through the message catalogue."""
    def t(key: str, **more: Any) -> str:
        return text(f"web.{key}", language, **more)

    def fmt(value: Any, formatter: str) -> str:
        return format_value(value, formatter, language)

    csrf = visitor.csrf if visitor else pre_token(request)
    # The switch to the other language names it in that language: 中文 on an English page.
    context = {"t": t, "fmt": fmt, "text": lambda key, **more: text(key, language, **more), "language": language,
               "text_in": lambda other, key: text(key, other),
               "visitor": visitor, "csrf": csrf, "path": request.url.path, "here": _here(request), **values}
    return web_of(request).templates.TemplateResponse(request, template, context, status_code=status)
