"""Signing in without passwords (a one-time link by mail, or the company's single sign-on),
signing out, the language, and the health check."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from opsaudit.i18n import LANGUAGES, text
from opsaudit.reports import outbox
from opsaudit.reports.delivery import deliver_pending
from opsaudit.reports.recipients import Person
from opsaudit.web import security, sessions
from opsaudit.web.context import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    Web,
    check_pre_token,
    client_address,
    current,
    find_person,
    language_of,
    render,
    set_cookie,
    web_of,
)
from opsaudit.web.links import sign_in_url

router = APIRouter()
YEAR = 365 * 24 * 3600


@router.get("/healthz", response_class=PlainTextResponse)
def healthz() -> str:
    return "ok"


@router.get("/login")
def login_page(request: Request) -> Response:
    if current(request) is not None:
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", language_of(request))


@router.post("/login")
def request_link(request: Request, background: BackgroundTasks, email: str = Form(""),
                 csrf_token: str = Form("")) -> Response:
    """Mail a sign-in link when the address is an active person's; the page reads the same either way."""
    language = language_of(request)
    if not check_pre_token(request, csrf_token):
        return render(request, "error.html", language, status=403, message=text("web.error.csrf", language))
    web = web_of(request)
    address = email.strip().casefold()
    client = client_address(request)
    with web.store.begin() as conn:
        allowed = sessions.allow_link_request(conn, address, client, web.now())
    if not allowed:
        return render(request, "error.html", language, status=429, message=text("web.error.too_many", language))
    person = find_person(web.directory(fresh=True), address) if "@" in address else None
    if person is not None and person.email:
        _mail_link(web, person, language)
        background.add_task(deliver_pending, web.store, web.settings)
    return render(request, "login_sent.html", language)


def _mail_link(web: Web, person: Person, language: str) -> None:
    """The link into the outbox, in the language the person signs in with."""
    now = web.now()
    with web.store.begin() as conn:
        token = sessions.issue_link(conn, person.staff_id, now)
        url = sign_in_url(web.settings, token)
        values = {"name": person.name, "url": url, "minutes": int(sessions.LINK_LIFETIME.total_seconds() // 60)}
        mail = outbox.OutgoingMail(
            dedupe_key=f"web:login:{security.digest(token)[:40]}", kind="notice",
            recipients=(outbox.Address(person.email or "", person.name, person.staff_id),),
            subject=text("web.mail.subject", language), body_text=text("web.mail.body", language, **values),
            body_html=web.templates.get_template("login_mail.html").render(
                intro=text("web.mail.intro", language, **values), url=url,
                button=text("web.mail.button", language), lang=language,
                note=text("web.mail.note", language, **values)))
        outbox.enqueue(conn, mail, now=now)


@router.get("/login/{token}")
def follow_link(request: Request, token: str) -> Response:
    """A valid link starts the session once; a used, expired or forged one starts nothing."""
    web = web_of(request)
    now = web.now()
    directory = web.directory(fresh=True)
    with web.store.begin() as conn:
        staff_id = sessions.redeem_link(conn, token, now)
        person = directory.people.get(staff_id or "")
        session_id = sessions.start_session(conn, staff_id, now) if person and person.active else None
    if session_id is None:
        language = language_of(request)
        return render(request, "error.html", language, status=400, message=text("web.error.link", language))
    set_cookie(request, SESSION_COOKIE, security.sign(web.key, "session", session_id))
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("")) -> Response:
    web = web_of(request)
    visitor = current(request)
    if visitor is not None:
        if not security.same(csrf_token, visitor.csrf):
            return render(request, "error.html", visitor.language, status=403,
                          message=text("web.error.csrf", visitor.language))
        session_id = security.unsign(web.key, "session", request.cookies.get(SESSION_COOKIE))
        with web.store.begin() as conn:
            sessions.end_session(conn, session_id or "", web.now())
    set_cookie(request, SESSION_COOKIE, None)
    return RedirectResponse("/login", status_code=303)


@router.post("/language")
def choose_language(request: Request, language: str = Form(...), csrf_token: str = Form(""),
                    next: str = Form("/")) -> Response:
    """Remember the person's language in a cookie for a year."""
    visitor = current(request)
    valid = security.same(csrf_token, visitor.csrf) if visitor else check_pre_token(request, csrf_token)
    if not valid or language not in LANGUAGES:
        shown = language_of(request)
        return render(request, "error.html", shown, visitor=visitor, status=403, message=text("web.error.csrf", shown))
    set_cookie(request, LANGUAGE_COOKIE, language, max_age=YEAR)
    # Only a path of this site: never an open redirect.
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    return RedirectResponse(target, status_code=303)
