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
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from opsaudit.config.models import Deadlines
from opsaudit.errors import InputError
from opsaudit.i18n import text
from opsaudit.store import lifecycle
from opsaudit.store.finding_views import SEVERITIES, STATUSES, FindingFilter, events_of, resolve_run
from opsaudit.store.schema import audit_runs
from opsaudit.store.times import from_db
from opsaudit.web import security
from opsaudit.web.context import NotFound, Visitor, render, visitor, web_of
from opsaudit.web.pages.rows import finding_rows
from opsaudit.web.views import all_matching, allowed_actions, names_of, page_of, visible_finding

router = APIRouter()
PAGE_SIZE = 50
AREAS = ("customer_service", "execution", "planning", "data_analysis", "data_quality")
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
# The fields each action's form asks for, beyond a note; a field shows only when the lifecycle's
# Request takes it, so the forms follow what the lifecycle accepts.
FIELDS: dict[str, tuple[str, ...]] = {"assign": ("to",), "submit-plan": ("cause", "prevention", "evidence"),
                                      "submit": ("evidence",), "regrade": ("severity",)}
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
    from opsaudit.cli.finding_text import _figures, channel_text, sample_line
    from opsaudit.cli.findings import readable

    web = web_of(request)
    with web.store.connect() as conn:
        row = visible_finding(conn, who, finding_id)
        events = events_of(conn, row["id"], web.settings.tz)
        run = conn.execute(sa.select(audit_runs.c.flow_run_id).where(audit_runs.c.id == row["audit_run_id"])).first()
        handling = lifecycle.major_handling_of(conn, [row["id"]]).get(row["id"])
    values = readable(row, web.settings.tz, who.language, names_of(who.directory))
    evidence = values["evidence"] or {}
    samples = [sample_line({k: v for k, v in sample.items() if v != values["entity_id"]}, who.language)
               for sample in evidence.get("samples") or []]
    # The step the finding waits for first; handing it to someone else or reopening it after.
    ordered = sorted(allowed_actions(row, who), key=lambda name: name in ("assign", "reopen"))
    actions = [_form(name, row, who) for name in ordered]
    history = [{**event, "door": channel_text(event, who.language),
                "file": (event.get("data") or {}).get("evidence_file")} for event in events]
    return render(request, "finding.html", who.language, visitor=who, f=values, row=row,
                  figures=_figures(values, row["facts"] or {}, who.language), samples=samples,
                  handling=handling_text(row["severity"], web.config.thresholds.deadlines, who.language),
                  major=handling, history=history,
                  actions=actions, flow_url=flow_run_url(run.flow_run_id) if run and run.flow_run_id else None,
                  overdue=from_db(row["due_at"]) < web.now() and row["status"] != "closed")


def handling_text(severity: str, deadlines: Deadlines, language: str) -> str:
    """What the severity requires (audit-rules §3) with the configured deadlines, as `findings show`
    words it, from the configuration read at start-up."""
    days = {"general": deadlines.general, "important": deadlines.important, "major": deadlines.major}
    return text(f"handling.{severity}", language, deadline=days[severity], plan_deadline=deadlines.major_plan)


def _form(name: str, row: Any, who: Visitor) -> dict[str, Any]:
    """One action's form: its fields, which are required, and the people it may go to."""
    action = lifecycle.ACTIONS[name]
    takes = {field.name for field in dataclasses.fields(lifecycle.Request)} | {"evidence"}
    fields = [field for field in FIELDS.get(name, ()) if field in takes]
    people = []
    if "to" in fields:
        people = [p for p in who.directory.people.values()
                  if p.active and p.department_id == row["department_id"] and p.staff_id != row["owner_id"]]
    return {"name": name, "fields": fields, "needs": action.needs, "people": people}


def flow_run_url(flow_run_id: str) -> str:
    """The run's page in Prefect's UI (PREFECT_UI_URL, or the API's address without /api)."""
    import os

    base = os.environ.get("PREFECT_UI_URL") or (os.environ.get("PREFECT_API_URL") or "").removesuffix("/api")
    return f"{(base or 'http://127.0.0.1:4200').rstrip('/')}/runs/flow-run/{flow_run_id}"


@router.post("/findings/{finding_id}/{action}")
def act(request: Request, finding_id: str, action: str, who: Visitor = Depends(visitor),
        csrf_token: str = Form(""), note: str = Form(""), to: str = Form(""), severity: str = Form(""),
        cause: str = Form(""), prevention: str = Form(""), evidence: UploadFile | None = File(None)) -> Response:
    """One step of the lifecycle, by the same code as the CLI: 303 back, or 403 with its reason."""
    language = who.language
    if not security.same(csrf_token, who.csrf):
        return render(request, "error.html", language, visitor=who, status=403,
                      message=text("web.error.csrf", language))
    if action not in lifecycle.ACTIONS:
        raise NotFound()
    web = web_of(request)
    with web.store.connect() as conn:
        row = visible_finding(conn, who, finding_id)
    needed = lifecycle.ACTIONS[action].needs
    given = {"note": note, "to": to, "evidence": evidence.filename if evidence else ""}
    if needed and not given.get(needed, "").strip():
        return render(request, "error.html", language, visitor=who, status=400,
                      message=text("web.error.needs", language, field=text(f"web.field.{needed}", language)))
    takes = {field.name for field in dataclasses.fields(lifecycle.Request)}
    extra = {name: value.strip() for name, value in (("cause", cause), ("prevention", prevention),
                                                     ("severity", severity)) if name in takes and value.strip()}
    stored, fresh = _store_upload(evidence, web.settings.data_dir) if evidence and evidence.filename else (None, False)
    try:  # decided on the staff and departments tables as they are now, not as a page showed them
        with web.store.begin() as conn:
            lifecycle.perform(conn, row["id"], lifecycle.Request(
                action, who.staff_id, note=note.strip() or None, evidence=str(stored) if stored else None,
                to=to.strip() if action == "assign" else None, channel="web", **extra),
                web.directory(fresh=True), now=web.now(), language=language)
    except Exception:
        if fresh and stored:  # nothing changed, so nothing is kept either
            shutil.rmtree(stored.parent, ignore_errors=True)
        raise
    return RedirectResponse(f"/findings/{row['id']}", status_code=303)


class TooLarge(Exception):
    """An evidence file over MAX_EVIDENCE_BYTES."""


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
    facts = (event.data or {}).get("evidence_file") if event else None
    path = Path(event.evidence) if event and event.evidence else None
    root = _evidence_root(web.settings.data_dir)
    if not facts or path is None or not path.is_relative_to(root) or not path.is_file():
        raise NotFound()
    if hashlib.sha256(path.read_bytes()).hexdigest() != facts.get("sha256"):
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
        events = events_of(conn, row["id"], web.settings.tz)
    return JSONResponse(show_json(row, events, web.settings, who.language, names_of(who.directory)))
