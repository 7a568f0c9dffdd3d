"""What must exist (audit-rules.md section 4): the plans and analysis reports the rules require,
as a calendar of deliverables owed per kind and period, from config/deliverables.yaml.

A deliverable is owed once its deadline has passed, and an audit judges those whose last day fell
in its period: every audit period has ended before it runs, so each of them is past its deadline.
The calendar is a handful of rows per kind and quarter, made here; which departments owe them, and
whether each exists, the database answers in one query per rule (checks/metrics/deliverables.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from opsaudit.config.models import PlanDue, ReportDue
from opsaudit.periods import Period, PeriodKind, containing, shift

# The period a deliverable of each kind covers.
PERIOD_KINDS: dict[str, PeriodKind] = {"annual": "year", "quarterly": "quarter", "monthly": "month"}
# Longer than the longest deadline offset (366 days) plus the longest period: where the scan for
# deliverables due in an audit period starts.
_SCAN_BACK = timedelta(days=800)


@dataclass(frozen=True)
class Owed:
    """One deliverable of each department that owes it: its kind (a plan level or a report kind),
    the period it covers, and the last day to make it."""

    kind: str
    period: str
    due_on: date


def due_on(period: Period, due: PlanDue | ReportDue) -> date:
    """The last day for the deliverable covering `period`: days before its first day (a plan), or
    days after its last day (a report)."""
    if isinstance(due, PlanDue):
        return period.start.date() - timedelta(days=due.days_before)
    return period.end.date() + timedelta(days=due.days_after - 1)


def owed_in(audit_period: Period, due: Mapping[str, PlanDue | ReportDue | None]) -> list[Owed]:
    """Every deliverable of each required kind whose last day falls in `audit_period`, by due date."""
    first, end = audit_period.start.date(), audit_period.end.date()
    owed: list[Owed] = []
    for kind, deadline in due.items():
        if deadline is None:
            continue  # the company does not require this kind
        period = containing(PERIOD_KINDS[kind], audit_period.start - _SCAN_BACK)
        while (day := due_on(period, deadline)) < end:
            if day >= first:
                owed.append(Owed(kind, period.label, day))
            period = shift(period, 1)
    return sorted(owed, key=lambda o: (o.due_on, o.kind, o.period))
