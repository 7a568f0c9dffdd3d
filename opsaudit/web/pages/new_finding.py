"""`/findings/new`: a problem an auditor of the operations department found on site, in an
interview or in documents (seed 000 §5.2), recorded as `opsaudit findings add` records it: by
`manual.add_manual_finding`, which decides who may and what is valid, and alerts a major one at once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from opsaudit.i18n import text
from opsaudit.manual import ManualFinding, add_manual_finding
from opsaudit.reports.delivery import deliver_pending
from opsaudit.store.lifecycle import Refused, who_may
from opsaudit.store.roles import Role
from opsaudit.web import security
from opsaudit.web.actions import NEW_FINDING, BadValue, Kind, read, shown
from opsaudit.web.context import Visitor, render, visitor, web_of
from opsaudit.web.pages.findings import kept_uploads, posted_form

router = APIRouter()
# The refusals that say the form is not this person's (403); the others are about what was
# filled in, and the form comes back with them to correct it (400).
NOT_THEIRS = ("role", "unknown_actor", "inactive_actor")


def check_may_record(who: Visitor) -> None:
    """Refused with the command line's line unless the visitor is an auditor of the operations
    department; the store function asks again, of the staff table as it is when it records."""
    if not who.may_record:
        raise Refused("role", who.language, action="add", actor=who.person.label(who.language),
                      who=who_may((Role.AUDITOR,), who.directory, who.language, owner_id=None, department_id=None))


@router.get("/findings/new")
def new_finding_page(request: Request, who: Visitor = Depends(visitor)) -> Response:
    check_may_record(who)
    return _form(request, who)


@router.post("/findings/new")
def record_finding(request: Request, background: BackgroundTasks, who: Visitor = Depends(visitor),
                   posted: FormData = Depends(posted_form)) -> Response:
    """303 to the new finding's page; the form again with the one line of what to correct (400),
    or 403; nothing is stored unless the finding is."""
    language = who.language
    if not security.same(str(posted.get("csrf_token") or ""), who.csrf):
        return render(request, "error.html", language, visitor=who, status=403,
                      message=text("web.error.csrf", language))
    check_may_record(who)
    sent = {asked.name: posted.get(asked.name) for asked in NEW_FINDING.fields if asked.kind is not Kind.FILES}
    try:
        values = read(NEW_FINDING, posted)
    except BadValue as bad:
        return _form(request, who, sent, status=400, message=bad.text(language))
    web = web_of(request)
    try:
        with kept_uploads(web.settings.data_dir) as keep:
            evidence = (*(keep(upload) for upload in values.pop("files")), *values.pop("links"))
            asked = ManualFinding(who.staff_id, evidence=evidence, channel="web", **values)
            with web.store.begin() as conn:
                finding_id, alerted = add_manual_finding(conn, asked, web.directory(fresh=True), web.settings,
                                                         web.config, now=web.now(), language=language)
    except Refused as refused:
        if refused.key in NOT_THEIRS:
            raise
        return _form(request, who, sent, status=400, message=str(refused))
    if alerted.messages:  # a major problem's alert, sent as the command line sends it
        background.add_task(deliver_pending, web.store, web.settings)
    return RedirectResponse(f"/findings/{finding_id}", status_code=303)


def _form(request: Request, who: Visitor, sent: dict[str, Any] | None = None, *, status: int = 200,
          message: str | None = None) -> Response:
    form = {"name": "new", "fields": shown(NEW_FINDING, who.directory, who.language, severity=None, values=sent)}
    return render(request, "new_finding.html", who.language, visitor=who, status=status, form=form, message=message)
