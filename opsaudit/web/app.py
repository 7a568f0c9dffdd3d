"""The FastAPI application of `opsaudit web`: resources made once, security headers on every
answer, refusals as pages, and the routes of each resource."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from opsaudit.db import check_reachable, create_engine, source_engine
from opsaudit.errors import OpsauditError
from opsaudit.i18n import text
from opsaudit.settings import Settings, load_settings
from opsaudit.source import Source
from opsaudit.store.lifecycle import Refused
from opsaudit.store.migrate import require_current
from opsaudit.store.roles import load_directory
from opsaudit.store.times import utcnow
from opsaudit.web import security
from opsaudit.web.context import NotFound, SignInRequired, Web, language_of, render
from opsaudit.web.pages.findings import MAX_EVIDENCE_BYTES, TooLarge

STATIC = Path(__file__).resolve().parent / "static"
FORM_ALLOWANCE = 256 * 1024  # the form's other fields beside an evidence file
# No script at all, no inline style, nothing from elsewhere; never inside another site's frame.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
       "frame-src 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
           # A sign-in link's token is in its path: no other site ever learns an address of ours.
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
           "Cross-Origin-Opener-Policy": "same-origin"}


def create_app(settings: Settings | None = None, *, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """The app on the store and directory of `settings`; each checked now, so a bad setting is one
    line at start-up and not an error page later. `clock` fixes the time (tests)."""
    settings = settings or load_settings()
    store = create_engine(settings.store, purpose="store", create=False)
    check_reachable(store, purpose="store")
    require_current(store)
    config = settings.load_config()  # read once: a changed configuration takes a restart
    load_directory(settings, config)
    source = Source(source_engine(settings.database, timezone=settings.timezone), config.source,
                    zone=settings.timezone)
    app = FastAPI(title="opsaudit", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = Web(settings, store, source, security.signing_key(settings), clock, config)
    app.state.trusted = security.trusted_networks(settings)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _guard(app)
    from opsaudit.web.pages import auth, findings, new_finding, reports, scores, work

    # new_finding before findings: /findings/new is no finding's id.
    for module in (auth, work, new_finding, findings, reports, scores):
        app.include_router(module.router)
    return app


def _guard(app: FastAPI) -> None:
    """Security headers and pending cookies on every answer; refusals and sign-in as pages."""

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable) -> Response:
        if int(request.headers.get("content-length") or 0) > MAX_EVIDENCE_BYTES + FORM_ALLOWANCE:
            response = _too_large(request)  # refused before the body is read
        else:
            response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        secure = request.url.scheme == "https" or app.state.web.settings.web_url.startswith("https://")
        for name, value, max_age in getattr(request.state, "cookies", []):
            if value is None:
                response.delete_cookie(name, httponly=True, samesite="lax", secure=secure)
            else:
                response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure)
        return response

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, _exc: SignInRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, _exc: NotFound) -> Response:
        return render(request, "error.html", language_of(request), status=404, message=None)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return render(request, "error.html", language_of(request), status=403, message=str(exc))

    @app.exception_handler(TooLarge)
    async def too_large(request: Request, _exc: TooLarge) -> Response:
        return _too_large(request)

    @app.exception_handler(OpsauditError)
    async def refused_review(request: Request, exc: OpsauditError) -> Response:
        # ReviewError and the lifecycle's other refusals: the CLI's one line, nothing changed.
        return render(request, "error.html", language_of(request), status=403, message=str(exc))


def _too_large(request: Request) -> Response:
    language = language_of(request)
    return render(request, "error.html", language, status=413,
                  message=text("web.error.too_large", language, size=MAX_EVIDENCE_BYTES // (1024 * 1024)))
