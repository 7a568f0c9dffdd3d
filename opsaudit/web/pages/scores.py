"""`/scores?period=YYYY-MM`: the month's scores, as `opsaudit scores` computes them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from opsaudit import periods
from opsaudit.errors import UsageError
from opsaudit.i18n import text
from opsaudit.scores import describe, month, scores_for
from opsaudit.web.context import Visitor, render, visitor, web_of

router = APIRouter()


@router.get("/scores")
def scores_page(request: Request, period: str = "", who: Visitor = Depends(visitor)) -> Response:
    web = web_of(request)
    now = web.now()
    try:
        span = month(period) if period else periods.previous("month", now.replace(tzinfo=None))
    except UsageError:
        return render(request, "error.html", who.language, visitor=who, status=400,
                      message=text("web.error.period", who.language, period=period))
    try:
        with web.store.connect() as conn:
            results = scores_for(conn, span, scoring=web.config.thresholds.scoring,
                                 zone=web.settings.tz, now=now, directory=who.directory, language=who.language)
    except UsageError as exc:  # a month no audit has covered: the CLI's line
        return render(request, "error.html", who.language, visitor=who, status=400, message=exc.text(who.language))
    # Like findings: outside the operations department, one's own department and its people.
    shown = [score for score in results
             if who.sees_all or score.department_id == who.person.department_id]
    rows = [{"kind": score.entity_type, "id": score.entity_id, "score": score.score,
             "label": who.directory.department_label(score.entity_id, who.language) if score.entity_type == "department"
             else who.directory.person_label(score.entity_id, who.language),
             "deductions": [describe(d, who.language) for d in score.deductions]} for score in shown]
    return render(request, "scores.html", who.language, visitor=who, rows=rows, period=span.label)
