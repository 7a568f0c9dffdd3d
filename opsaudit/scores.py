"""Monthly performance scores (seed 000 §7; audit-rules §3 "Incentives and constraints").

Every department and every responsible staff member starts the month at `scoring.start` (100)
and loses, as config/thresholds.yaml `scoring` says:
- per problem found in the month: 1, 3 or 10 for a general, important or major problem. A problem
  belongs to the month its audited period ends in (a week to the month of its Sunday, a quarter to
  its last month), so that a month's scores hold the problems of the month's work, whenever the
  audit ran. The same rule failing on the same entity in several periods of the month (the weekly
  and the monthly audit) is one problem, at its most severe grade.
- per overdue rectification: 2 for each finding whose deadline passed while its rectification was
  still with the owner at some time in the month (open up to in progress, from the history).
A department carries the problems and overdue rectifications of its findings; a staff member
those of the findings they own (责任人). Each deduction names its finding, so HR can check it.
A finding the audit team lead withdrew costs nothing (seed 000 §6.1); a manual finding counts as
any other, in the month it was found.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.config.models import Scoring
from opsaudit.errors import UsageError
from opsaudit.periods import Period, containing, given_month, periods_ending_in
from opsaudit.reports.recipients import Directory
from opsaudit.store.findings import COUNTED, MANUAL, OPEN
from opsaudit.store.lifecycle import WITH_OWNER
from opsaudit.store.schema import audit_runs, finding_events, findings
from opsaudit.store.times import from_db, to_db, utcnow

SEVERITY_RANK = {"general": 0, "important": 1, "major": 2}


@dataclass(frozen=True)
class Deduction:
    """Points off a score, and the finding they are for."""

    reason: Literal["problem", "overdue"]
    points: int
    finding: RowMapping = field(compare=False, repr=False)

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        due = from_db(self.finding["due_at"], zone)
        return {"reason": self.reason, "points": self.points, "finding_id": self.finding["id"],
                "rule_id": self.finding["rule_id"], "entity_type": self.finding["entity_type"],
                "entity_id": self.finding["entity_id"], "period": self.finding["period"],
                "severity": self.finding["severity"],
                "due_at": due.isoformat(timespec="seconds") if due and self.reason == "overdue" else None}


@dataclass(frozen=True)
class Score:
    """One department's or staff member's score of the month."""

    entity_type: Literal["department", "staff"]
    entity_id: str
    department_id: str | None
    score: int
    deductions: tuple[Deduction, ...]

    def as_json(self, zone: tzinfo) -> dict[str, Any]:
        """interface.md: `{"entity_type", "entity_id", "department_id", "score", "deductions"}`."""
        return {"entity_type": self.entity_type, "entity_id": self.entity_id, "department_id": self.department_id,
                "score": self.score, "deductions": [d.as_json(zone) for d in self.deductions]}

    def count(self, reason: str, severity: str | None = None) -> int:
        return sum(d.reason == reason and severity in (None, d.finding["severity"]) for d in self.deductions)


def month(label: str) -> Period:
    """The month `label` names; a UsageError for anything else."""
    return given_month(label, "--period")


def require_audited(conn: Connection, period: Period, language: str) -> None:
    """A UsageError unless an audit run succeeded on a period ending in the month: a month never
    audited has no problems to count, and 100 points for it would read as a clean month."""
    ended = (audit_runs.c.status == "succeeded",)
    audited = conn.execute(sa.select(sa.func.count()).select_from(audit_runs).where(
        *ended, audit_runs.c.period_end > period.start, audit_runs.c.period_end <= period.end)).scalar_one()
    if audited:
        return
    first, last = conn.execute(sa.select(sa.func.min(audit_runs.c.period_end), sa.func.max(audit_runs.c.period_end))
                               .where(*ended)).one()
    from opsaudit.i18n import text

    if first is None:
        raise UsageError(text("validation.scores.never_audited", language, option="--period", period=period.label))
    # A period's end is exclusive: the month it ends in holds its last moment.
    first_month, last_month = (containing("month", end - timedelta(microseconds=1)).label for end in (first, last))
    raise UsageError(text("validation.scores.not_audited", language, option="--period", period=period.label,
                          first=first_month,
                          last=last_month))


def _labels_ending_in(period: Period) -> list[str]:
    """The labels of the weeks, the month, its quarter and year whose last day is in the month."""
    labels = set(periods_ending_in(period))
    day = period.start
    while day < period.end:
        if day.isoweekday() == 7:
            labels.add(containing("week", day).label)
        day += timedelta(days=1)
    return sorted(labels)


def problems(conn: Connection, period: Period) -> list[RowMapping]:
    """The month's problems: one finding per rule and entity, the most severe (then the first);
    each manual finding is a problem of its own."""
    rows = conn.execute(sa.select(findings).where(COUNTED, sa.or_(
        findings.c.period.in_(_labels_ending_in(period)),
        findings.c.period.like(f"%..{period.label}-%"),   # date ranges ending in the month
    )).order_by(findings.c.found_at, findings.c.id)).mappings()
    chosen: dict[tuple[str, ...], RowMapping] = {}
    for row in rows:
        key = (row["id"],) if row["rule_id"] == MANUAL else (row["rule_id"], row["entity_type"], row["entity_id"])
        if key not in chosen or SEVERITY_RANK[row["severity"]] > SEVERITY_RANK[chosen[key]["severity"]]:
            chosen[key] = row
    return list(chosen.values())


def overdue(conn: Connection, period: Period, zone: tzinfo, now: datetime) -> list[RowMapping]:
    """The findings whose rectification was with the owner past its deadline at some time in the month."""
    start, end = period.start.replace(tzinfo=zone), min(period.end.replace(tzinfo=zone), now)
    rows = list(conn.execute(sa.select(findings).where(
        COUNTED, findings.c.due_at < to_db(end),
        sa.or_(findings.c.closed_at.is_(None), findings.c.closed_at > to_db(start)),
    ).order_by(findings.c.due_at, findings.c.id)).mappings())
    moves: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    if rows:
        events = conn.execute(sa.select(finding_events.c.finding_id, finding_events.c.at, finding_events.c.to_status)
                              .where(finding_events.c.finding_id.in_([row["id"] for row in rows]),
                                     finding_events.c.to_status.is_not(None))
                              .order_by(finding_events.c.at, finding_events.c.id))
        for finding_id, at, status in events:
            moves[finding_id].append((from_db(at, zone), status))
    return [row for row in rows if _with_owner_during(moves[row["id"]], max(start, from_db(row["due_at"], zone)), end)]


def _with_owner_during(moves: list[tuple[datetime, str]], start: datetime, end: datetime) -> bool:
    """Whether the status history has the rectification with the owner at some time in [start, end)."""
    if start >= end:
        return False
    status = OPEN   # a finding is raised open
    for at, to_status in moves:
        if at > start:
            if at >= end:
                break
            if to_status in WITH_OWNER:
                return True
        else:
            status = to_status
    return status in WITH_OWNER


def scores_for(conn: Connection, period: str | Period, *, scoring: Scoring, zone: tzinfo, now: datetime | None = None,
               directory: Directory | None = None, language: str = "zh-CN") -> list[Score]:
    """The month's scores: every department (of the directory, and any a finding names) and every
    staff member with a deduction; departments first, each in id order. `now` (default: the
    clock) bounds a month still running. A UsageError for a month no audit has covered."""
    span = month(period) if isinstance(period, str) else period
    require_audited(conn, span, language)
    clock = (now or utcnow()).astimezone(zone)
    points = {"general": scoring.general, "important": scoring.important, "major": scoring.major}
    found = [Deduction("problem", points[row["severity"]], row) for row in problems(conn, span)]
    late = [Deduction("overdue", scoring.overdue, row) for row in overdue(conn, span, zone, clock)]
    by_department: dict[str, list[Deduction]] = defaultdict(list)
    by_staff: dict[str, list[Deduction]] = defaultdict(list)
    for deduction in found + late:
        if deduction.finding["department_id"]:
            by_department[deduction.finding["department_id"]].append(deduction)
        if deduction.finding["owner_id"]:
            by_staff[deduction.finding["owner_id"]].append(deduction)
    departments = sorted(set(directory.departments if directory else ()) | set(by_department))
    result = [_score("department", d, d, by_department[d], scoring.start) for d in departments]
    for staff_id in sorted(by_staff):
        person = directory.people.get(staff_id) if directory else None
        home = person.department_id if person else _usual_department(by_staff[staff_id])
        result.append(_score("staff", staff_id, home, by_staff[staff_id], scoring.start))
    return result


def _score(kind: Literal["department", "staff"], entity_id: str, department_id: str | None,
           deductions: Iterable[Deduction], start: int) -> Score:
    ordered = tuple(sorted(deductions, key=_order))
    return Score(kind, entity_id, department_id, start - sum(d.points for d in ordered), ordered)


def _order(deduction: Deduction) -> tuple[Any, ...]:
    """Problems as they were found, then overdue rectifications by deadline."""
    finding = deduction.finding
    moment = finding["found_at"] if deduction.reason == "problem" else finding["due_at"]
    return deduction.reason != "problem", from_db(moment), finding["rule_id"], finding["entity_id"], finding["id"]


def _usual_department(deductions: list[Deduction]) -> str | None:
    """Someone not in the staff table: the department most of their findings name."""
    counts: dict[str, int] = defaultdict(int)
    for deduction in deductions:
        if deduction.finding["department_id"]:
            counts[deduction.finding["department_id"]] += 1
    return max(sorted(counts), key=counts.__getitem__) if counts else None


def describe(deduction: Deduction, language: str) -> str:
    """One deduction for a person: `客户满意度未达标（CS1）：重要问题，扣3分`."""
    from opsaudit.i18n import entity_label, text
    from opsaudit.store.finding_views import finding_text

    title = text("label.named", language, name=finding_text(deduction.finding, language)[0],
                 id=entity_label(deduction.finding, language))
    return text(f"scores.deduction.{deduction.reason}", language, title=title, points=deduction.points,
                severity=deduction.finding["severity"], id=deduction.finding["id"][:8])
