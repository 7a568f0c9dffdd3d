"""`/findings`: the list with the CLI's filters and its downloads; `/findings/<id>`: one finding
with its evidence, history and the forms of the actions the visitor may take now; the actions
themselves, the evidence files, and `/api/findings/<id>`."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from opsaudit.config.models import Deadlines
from opsaudit.errors import InputError
from opsaudit.i18n import text
from opsaudit.i18n.figures import finding_figures
from opsaudit.manual import alert_if_major
from opsaudit.reports.delivery import deliver_pending
from opsaudit.reports.plan_mail import Mailing
from opsaudit.store import lifecycle
from opsaudit.store.finding_views import SEVERITIES, STATUSES, FindingFilter, events_of, last_cause, resolve_run
from opsaudit.store.schema import audit_runs
from opsaudit.store.times import from_db
from opsaudit.web import security
from opsaudit.web.actions import FORMS, LINK, BadValue, Doer, Kind, offered, read, shown
from opsaudit.web.context import NotFound, Visitor, render, visitor, web_of
from opsaudit.web.pages.rows import finding_rows
from opsaudit.web.views import all_matching, names_of, page_of, visible_finding

router = APIRouter()
PAGE_SIZE = 50
AREAS = ("customer_service", "execution", "planning", "data_analysis", "data_quality")
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
_SAFE_NAME = re.compile(r"[^\w.\-]+", re.UNICODE)


def _filter(request: Request, who: Visitor) -> tuple[FindingFilter, dict[str, str]]:
    """The CLI's filters from the query string, each value one of its codes; a bad one is a 400."""
    given = {name: request.query_params.get(name, "").strip() for name in
             ("status", "severity", "area", "department", "audit_run", "overdue")}
    for name, codes in (("status", STATUSES), ("severity", SEVERITIES), ("area", AREAS)):
        if given[name] and given[name] not in codes:
            raise BadFilter(name, given[name])
    web = web_of(request)
    where = FindingFilter(status=given["status"] or None, severity=given["severity"] or None,
                          area=given["area"] or None, department=given["department"] or None,
                          overdue_at=web.now() if given["overdue"] in ("1", "true", "on") else None)
    return where, {key: value for key, value in given.items() if value}


class BadFilter(Exception):
    def __init__(self, name: str, value: str) -> None:
        super().__init__(name, value)
        self.name, self.value = name, value


def _with_run(conn: sa.Connection, where: FindingFilter, run: str | None, name: str = "audit_run") -> FindingFilter:
    if not run:
        return where
    try:
        return dataclasses.replace(where, audit_run=resolve_run(conn, run))
    except InputError:
        raise BadFilter(name, run) from None


@router.get("/findings")
def findings_page(request: Request, page: int = 1, who: Visitor = Depends(visitor)) -> Response:
    web = web_of(request)
    try:
        where, given = _filter(request, who)
        with web.store.connect() as conn:
            where = _with_run(conn, where, given.get("audit_run"))
            rows, total = page_of(conn, who, where, page=max(page, 1), size=PAGE_SIZE)
    except BadFilter as bad:
        return render(request, "error.html", who.language, visitor=who, status=400,
                      message=text("web.error.filter", who.language, name=bad.name, value=bad.value))
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    query = urlencode(given)
    return render(request, "findings.html", who.language, visitor=who, rows=finding_rows(rows, who, web.now()),
                  total=total, page=max(page, 1), pages=pages, given=given, query=query,
                  statuses=STATUSES, severities=SEVERITIES, areas=AREAS,
                  departments=sorted(who.directory.departments) if who.sees_all else [who.person.department_id])


@router.get("/findings.{kind}")
def findings_download(request: Request, kind: str, who: Visitor = Depends(visitor)) -> Response:
    """The filtered list as the CLI exports it: CSV with a BOM, or the styled workbook."""
    from opsaudit.cli.findings import readable, write_csv
    from opsaudit.reports.findings_workbook import write_findings_workbook

    if kind not in ("csv", "xlsx"):
        raise NotFound()
    web = web_of(request)
    try:
        where, given = _filter(request, who)
        with web.store.connect() as conn:
            rows = all_matching(conn, who, _with_run(conn, where, given.get("audit_run")))
    except BadFilter as bad:
        return render(request, "error.html", who.language, visitor=who, status=400,
                      message=text("web.error.filter", who.language, name=bad.name, value=bad.value))
    names = names_of(who.directory)
    stamp = web.now().strftime("%Y%m%d-%H%M%S")
    disposition = {"Content-Disposition": f'attachment; filename="findings-{stamp}.{kind}"'}
    if kind == "csv":
        out = io.StringIO()
        write_csv(rows, web.settings.tz, who.language, names, out)
        return Response(out.getvalue().encode("utf-8"), media_type="text/csv; charset=utf-8", headers=disposition)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "findings.xlsx"
        write_findings_workbook(path, [readable(row, web.settings.tz, who.language, names) for row in rows],
                                who.language)
        content = path.read_bytes()
    return Response(content, headers=disposition,
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@router.get("/findings/{finding_id}")
def finding_page(request: Request, finding_id: str, who: Visitor = Depends(visitor)) -> Response:
    from opsaudit.cli.finding_text import channel_text, sample_line
    from opsaudit.cli.findings import readable

    web = web_of(request)
    with web.store.connect() as conn:
        row = visible_finding(conn, who, finding_id)
        events = events_of(conn, row["id"], web.settings.tz)
        run = conn.execute(sa.select(audit_runs.c.flow_run_id).where(audit_runs.c.id == row["audit_run_id"])).first()
        handling = lifecycle.major_handling_of(conn, [row["id"]]).get(row["id"])
        previous_cause = last_cause(conn, row, web.settings.tz)
    values = readable(row, web.settings.tz, who.language, names_of(who.directory))
    evidence = values["evidence"] or {}
    samples = [sample_line({k: v for k, v in sample.items() if v != values["entity_id"]}, who.language)
               for sample in evidence.get("samples") or []]
    actions = [{"name": form.name, "uploads": form.uploads,
                "fields": shown(form, who.directory, who.language, severity=row["severity"], row=row,
                                values={"severity": row["severity"]})}
               for form in offered(row, who.roles_on(row))]
    history = [{**event, "door": channel_text(event, who.language),
                "file": (event.get("data") or {}).get("evidence_file")} for event in events]
    return render(request, "finding.html", who.language, visitor=who, f=values, row=row,
                  figures=finding_figures(values, row["facts"] or {}, who.language), samples=samples,
                  handling=handling_text(row["severity"], web.config.thresholds.deadlines, who.language),
                  major=handling, previous_cause=previous_cause, history=history,
                  attachments=attachments_of(row, web.settings.data_dir),
                  actions=actions, today=web.now().date(), found_on=from_db(row["found_at"], web.settings.tz).date(),
                  flow_url=flow_run_url(run.flow_run_id) if run and run.flow_run_id else None,
                  overdue=from_db(row["due_at"]) < web.now() and row["status"] in lifecycle.NOT_CLOSED)


def handling_text(severity: str, deadlines: Deadlines, language: str) -> str:
    """What the severity requires (audit-rules §3) with the configured deadlines, as `findings show`
    words it, from the configuration read at start-up."""
    days = {"general": deadlines.general, "important": deadlines.important, "major": deadlines.major}
    return text(f"handling.{severity}", language, deadline=days[severity], plan_deadline=deadlines.major_plan)


def attachments_of(row: Any, data_dir: Path) -> list[dict[str, Any]]:
    """A manual finding's evidence as its page lists it: a file uploaded on the web (kept under
    the evidence folder) to download by its number, a web address to follow, anything else (a
    file named on the command line) by its name and digest."""
    root = _evidence_root(data_dir)
    listed = []
    for given in (row["evidence"] or {}).get("attachments") or []:
        kept = given["evidence"]
        listed.append({**given, "name": Path(kept).name,
                       "download": bool(given.get("sha256")) and Path(kept).resolve().is_relative_to(root),
                       "href": kept if LINK.match(kept) else None})
    return listed


def flow_run_url(flow_run_id: str) -> str:
    """The run's page in Prefect's UI (PREFECT_UI_URL, or the API's address without /api)."""
    import os

    base = os.environ.get("PREFECT_UI_URL") or (os.environ.get("PREFECT_API_URL") or "").removesuffix("/api")
    return f"{(base or 'http://127.0.0.1:4200').rstrip('/')}/runs/flow-run/{flow_run_id}"


async def posted_form(request: Request) -> AsyncIterator[FormData]:
    """The posted fields and files, closed when the answer has gone."""
    async with request.form() as form:
        yield form


@router.post("/findings/{finding_id}/{action}")
def act(request: Request, finding_id: str, action: str, background: BackgroundTasks,
        who: Visitor = Depends(visitor), posted: FormData = Depends(posted_form)) -> Response:
    """One declared action (`web.actions.FORMS`), by the store's code as the CLI's: 303 back, 400
    for a field it needs, or 403 with the store's one-line refusal; nothing changes unless it is done."""
    language = who.language
    if not security.same(str(posted.get("csrf_token") or ""), who.csrf):
        return render(request, "error.html", language, visitor=who, status=403,
                      message=text("web.error.csrf", language))
    form = FORMS.get(action)
    if form is None:
        raise NotFound()
    web = web_of(request)
    with web.store.connect() as conn:
        row = visible_finding(conn, who, finding_id)
    try:
        values = read(form, posted, row["severity"])
    except BadValue as bad:
        return render(request, "error.html", language, visitor=who, status=400, message=bad.text(language))
    with kept_uploads(web.settings.data_dir) as keep:
        for field in form.fields:
            if field.kind is Kind.FILE and values[field.name] is not None:
                values[field.name] = keep(values[field.name])
        # Decided on the staff and departments tables as they are now, not as a page showed them.
        directory, now = web.directory(fresh=True), web.now()
        mailing = Mailing(web.settings, web.config.recipients)
        with web.store.begin() as conn:
            done = form.perform(conn, row["id"], Doer(who.staff_id, directory, now, language,
                                                      web.config.thresholds.deadlines, mailing=mailing), values)
            # A finding the lead regrades to major alerts the operations manager at once, as from the CLI.
            alerted = alert_if_major(conn, row["id"], directory, web.settings, web.config, now=now) \
                if action == "regrade" else None
    # Sent after the answer, as the CLI sends at once: an alert, or the mail a plan's step queued.
    if (alerted is not None and alerted.messages) or (isinstance(done, lifecycle.Transition) and done.mailed.messages):
        background.add_task(deliver_pending, web.store, web.settings)
    return RedirectResponse(f"/findings/{row['id']}", status_code=303)


class TooLarge(Exception):
    """An evidence file over MAX_EVIDENCE_BYTES."""


@contextmanager
def kept_uploads(data_dir: Path) -> Iterator[Callable[[UploadFile], str]]:
    """`keep(upload)`: the upload kept under the data dir by its SHA-256, as its path. The folders
    made for this request are removed again when the block fails: then nothing changed."""
    made: list[Path] = []

    def keep(upload: UploadFile) -> str:
        stored, fresh = _store_upload(upload, data_dir)
        made.extend([stored.parent] if fresh else [])
        return str(stored)

    try:
        yield keep
    except BaseException:
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _store_upload(upload: UploadFile, data_dir: Path) -> tuple[Path, bool]:
    """The file kept under the data dir by its SHA-256 (the same file twice is kept once):
    (where, whether it is new)."""
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=_evidence_root(data_dir), delete=False) as temporary:
        for block in iter(lambda: upload.file.read(1 << 20), b""):
            size += len(block)
            if size > MAX_EVIDENCE_BYTES:
                Path(temporary.name).unlink(missing_ok=True)
                raise TooLarge()
            digest.update(block)
            temporary.write(block)
    name = _SAFE_NAME.sub("_", Path(upload.filename or "evidence").name).strip("._") or "evidence"
    folder = _evidence_root(data_dir) / digest.hexdigest()
    target = folder / name
    fresh = not folder.exists()
    folder.mkdir(exist_ok=True)
    if target.exists():
        Path(temporary.name).unlink()
    else:
        Path(temporary.name).replace(target)
    return target, fresh


def _evidence_root(data_dir: Path) -> Path:
    root = data_dir.expanduser().resolve() / "evidence"
    root.mkdir(parents=True, exist_ok=True)
    return root


@router.get("/findings/{finding_id}/evidence/{event_id}")
def evidence_file(request: Request, finding_id: str, event_id: int, who: Visitor = Depends(visitor)) -> Response:
    """A file uploaded with an action, when it is still the one recorded (same SHA-256)."""
    from opsaudit.store.schema import finding_events

    web = web_of(request)
    with web.store.connect() as conn:
        row = visible_finding(conn, who, finding_id)
        event = conn.execute(sa.select(finding_events.c.evidence, finding_events.c.data).where(
            finding_events.c.id == event_id, finding_events.c.finding_id == row["id"])).first()
    return _kept_file(request, who, event.evidence if event else None,
                      (event.data or {}).get("evidence_file") if event else None)


@router.get("/findings/{finding_id}/attachments/{number}")
def attachment_file(request: Request, finding_id: str, number: int, who: Visitor = Depends(visitor)) -> Response:
    """A manual finding's evidence file, by its place among the finding's attachments."""
    web = web_of(request)
    with web.store.connect() as conn:
        row = visible_finding(conn, who, finding_id)
    attachments = (row["evidence"] or {}).get("attachments") or []
    given = attachments[number] if 0 <= number < len(attachments) else {}
    return _kept_file(request, who, given.get("evidence"), given)


def _kept_file(request: Request, who: Visitor, kept: str | None, facts: Mapping[str, Any] | None) -> Response:
    """A file kept under the evidence folder, when it is still the one recorded (same SHA-256);
    404 for any other path."""
    path = Path(kept).resolve() if kept else None
    if not facts or not facts.get("sha256") or path is None or \
            not path.is_relative_to(_evidence_root(web_of(request).settings.data_dir)) or not path.is_file():
        raise NotFound()
    if hashlib.sha256(path.read_bytes()).hexdigest() != facts["sha256"]:
        return render(request, "error.html", who.language, visitor=who, status=409,
                      message=text("web.error.changed_file", who.language))
    return FileResponse(path, filename=path.name, content_disposition_type="attachment")


@router.get("/api/findings/{finding_id}")
def finding_json(request: Request, finding_id: str, who: Visitor = Depends(visitor)) -> Response:
    """The JSON of `findings show --format json`."""
    from opsaudit.cli.findings import show_json

    web = web_of(request)
    with web.store.connect() as conn:
        row = visible_finding(conn, who, finding_id)
        return JSONResponse(show_json(conn, row, web.settings, who.language, names_of(who.directory)))
