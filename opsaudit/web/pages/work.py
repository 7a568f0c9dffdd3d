"""`/`: my work. The findings on which I may act now and the reports waiting for my review."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from opsaudit.reports.review import DRAFT, list_reports
from opsaudit.web.context import Visitor, render, visitor, web_of
from opsaudit.web.pages.rows import finding_rows
from opsaudit.web.views import WORK, WORK_PAGE, allowed_actions, my_work

router = APIRouter()


@router.get("/")
def home(request: Request, page: int = 1, who: Visitor = Depends(visitor)) -> Response:
    """One page of my work (WORK_PAGE findings, overdue first); only the findings shown are worded."""
    web = web_of(request)
    now = web.now()
    page = max(page, 1)
    with web.store.connect() as conn:
        work = my_work(conn, who, now, page)
        reviews = [line for line in list_reports(conn) if line.status == DRAFT] if who.is_audit_lead else []
    rows = finding_rows(work.rows, who, now, actions=lambda row: allowed_actions(row, who, WORK))
    return render(request, "home.html", who.language, visitor=who, rows=rows, total=work.total,
                  overdue=work.overdue, reviews=reviews, page=page,
                  pages=max((work.total + WORK_PAGE - 1) // WORK_PAGE, 1))
