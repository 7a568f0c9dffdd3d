"""`/reports`: every run's report and its review; `/reports/<run_id>`: the report in the page, its
PDF, and the audit lead's approval or rejection by the same code as `opsaudit reports`."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from opsaudit.i18n import text
from opsaudit.reports import review
from opsaudit.reports.delivery import deliver_pending
from opsaudit.store.schema import audit_runs, report_events, reports
from opsaudit.store.times import from_db
from opsaudit.web import security
from opsaudit.web.context import NotFound, Visitor, render, visitor, web_of
from opsaudit.web.pages.findings import flow_run_url

router = APIRouter()
# The report is a self-contained document of its own (inline CSS, SVG): shown in a frame of our
# page only, with no script and nothing fetched.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"


def _readers(who: Visitor) -> None:
    """Reports cover every department: the operations department and executives read them here."""
    if not who.sees_all:
        raise NotFound()


@router.get("/reports")
def reports_page(request: Request, who: Visitor = Depends(visitor)) -> Response:
    _readers(who)
    with web_of(request).store.connect() as conn:
        lines = review.list_reports(conn)
    return render(request, "reports.html", who.language, visitor=who, lines=lines, zone=web_of(request).settings.tz)


def _files(conn: sa.Connection, run_id: str) -> list[sa.RowMapping]:
    return list(conn.execute(sa.select(reports).where(reports.c.audit_run_id == run_id)
                             .order_by(reports.c.language, reports.c.format)).mappings())


def _file(files: list[sa.RowMapping], fmt: str, language: str) -> sa.RowMapping | None:
    """The file in the reader's language, else in the first language there is."""
    matching = [row for row in files if row["format"] == fmt]
    return next((row for row in matching if row["language"] == language), matching[0] if matching else None)


@router.get("/reports/{run_id}")
def report_page(request: Request, run_id: str, who: Visitor = Depends(visitor)) -> Response:
    _readers(who)
    web = web_of(request)
    with web.store.connect() as conn:
        run = conn.execute(sa.select(audit_runs).where(audit_runs.c.id == run_id)).mappings().first()
        files = _files(conn, run_id)
        steps = list(conn.execute(sa.select(report_events).where(report_events.c.audit_run_id == run_id)
                                  .order_by(report_events.c.id)).mappings())
    if run is None or not files:
        raise NotFound()
    line = next(line for line in _lines(web, run_id))
    return render(request, "report.html", who.language, visitor=who, run=run, line=line,
                  html=_file(files, "html", who.language), pdf=_file(files, "pdf", who.language),
                  steps=[{**step, "at": from_db(step["at"], web.settings.tz)} for step in steps],
                  may_review=who.is_audit_lead and line.status == review.DRAFT,
                  flow_url=flow_run_url(run["flow_run_id"]) if run["flow_run_id"] else None)


def _lines(web, run_id: str) -> list[review.ReportLine]:
    with web.store.connect() as conn:
        return [line for line in review.list_reports(conn) if line.audit_run_id == run_id]


@router.get("/reports/{run_id}/report.{fmt}")
def report_file(request: Request, run_id: str, fmt: str, who: Visitor = Depends(visitor)) -> Response:
    """The report's HTML (for the frame) or PDF (a download), in the reader's language if there is one."""
    _readers(who)
    if fmt not in ("html", "pdf"):
        raise NotFound()
    with web_of(request).store.connect() as conn:
        found = _file(_files(conn, run_id), fmt, who.language)
    path = Path(found["path"]) if found else None
    if path is None or not path.is_file():
        raise NotFound()
    if fmt == "pdf":
        return FileResponse(path, filename=path.name, media_type="application/pdf",
                            content_disposition_type="attachment")
    return FileResponse(path, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"})


@router.post("/reports/{run_id}/{decision}")
def decide(request: Request, run_id: str, decision: str, background: BackgroundTasks,
           who: Visitor = Depends(visitor), csrf_token: str = Form(""), note: str = Form("")) -> Response:
    """approve or reject: `opsaudit reports approve|reject RUN_ID --actor <me>`, then its mail goes out."""
    if not security.same(csrf_token, who.csrf):
        return render(request, "error.html", who.language, visitor=who, status=403,
                      message=text("web.error.csrf", who.language))
    if decision not in ("approve", "reject"):
        raise NotFound()
    web = web_of(request)
    # Decided on the staff and departments tables as they are now, not as a page showed them.
    gate = review.Gate(web.directory(fresh=True), web.config.recipients, web.settings)
    step = review.approve if decision == "approve" else review.reject
    with web.store.begin() as conn:
        step(conn, gate, run_id, who.staff_id, note.strip() or None, now=web.clock(), language=who.language)
    background.add_task(deliver_pending, web.store, web.settings)
    return RedirectResponse(f"/reports/{run_id}", status_code=303)
