"""Findings: raised by audits and kept through rectification, in bulk.

- A problem measured per period (a rate, a ratio, a data-quality share) is one finding per
  (rule, entity, period): a rerun of the period updates it, never duplicates it.
- A per-record problem (a task still overdue, a plan still unapproved) is one finding while it
  stays open: a later period that finds it again updates its figures and severity, and records
  the change as an event, instead of raising it again.
- A problem back within `recurrence_periods` after its finding was closed is a new finding,
  raised one level and marked recurring.
- A special audit or spot check that finds a problem already recorded refers to that finding: a
  `rechecked` event names the run and what it measured, and the finding stays with the run that
  raised it, so that run's report, mails and counts keep what the audit lead reviewed.
- The audit team lead's judgment stands (seed 000 §6.1): a finding the lead withdrew is neither
  updated nor raised again for its period, and a regraded one keeps the lead's severity and
  deadlines while a rerun refreshes its figures.

The period's existing findings and the recurrence candidates are read in one query each, and
the inserts, updates and events are written with executemany: the number of statements does
not grow with the number of findings. Every change is also written to the append-only events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.checks.results import CheckResult, Outcome, Severity
from opsaudit.config.models import Deadlines
from opsaudit.periods import shift
from opsaudit.store.runs import OWN_FOLDER_KINDS, RunInfo, _jsonable
from opsaudit.store.schema import finding_events, findings
from opsaudit.store.times import from_db, to_db

OPEN = "open"
CLOSED = "closed"
# Withdrawn by the audit team lead: out of every count, score and follow-up, and never raised again
# for its period.
WITHDRAWN = "withdrawn"
ENDED = (CLOSED, WITHDRAWN)
COUNTED = findings.c.status != WITHDRAWN
# A problem an auditor recorded by hand (seed 000 §5.2), raised by no rule over the data.
MANUAL = "manual"
REGRADE = "regrade"
# Entities judged record by record: their problem persists from period to period until fixed.
RECORD_ENTITIES = frozenset({"task", "plan", "plan_target", "adjustment", "report", "reported_metric", "ticket"})
_FIGURES = ("severity", "observed", "population")
# What recording compares with a known finding; its evidence and facts are replaced, never read.
_COMPARED = ("id", "audit_run_id", "rule_id", "entity_type", "entity_id", "period", "status", "found_at",
             "updated_at", "due_at", "plan_due_at", "recurring", *_FIGURES)
Key = tuple[str, str, str]


@dataclass(frozen=True)
class RecordSummary:
    raised: int = 0
    updated: int = 0
    unchanged: int = 0
    recurring: int = 0
    referred: int = 0

    @property
    def total(self) -> int:
        return self.raised + self.updated + self.unchanged + self.referred


def is_finding(result: CheckResult) -> bool:
    """Failed results become findings; roll-ups of per-record rules only inform the summary."""
    return result.outcome is Outcome.FAILED and result.severity is not None and not result.facts.get("rollup")


def deadlines_for(severity: Severity, found_at: datetime, deadlines: Deadlines) -> tuple[datetime, datetime | None]:
    """(due_at, plan_due_at): major problems owe a plan within days and the fix later."""
    days = {Severity.GENERAL: deadlines.general, Severity.IMPORTANT: deadlines.important,
            Severity.MAJOR: deadlines.major}[severity]
    plan_due = found_at + timedelta(days=deadlines.major_plan) if severity is Severity.MAJOR else None
    return found_at + timedelta(days=days), plan_due


def event_row(finding_id: str, *, at: datetime, actor: str, action: str, from_status: str | None = None,
              to_status: str | None = None, run_id: str | None = None, note: str | None = None,
              data: dict[str, Any] | None = None) -> dict[str, Any]:
    """One row of the append-only event table."""
    return {"finding_id": finding_id, "at": to_db(at), "actor": actor, "action": action,
            "from_status": from_status, "to_status": to_status, "audit_run_id": run_id, "note": note,
            "data": _jsonable(data or {})}


def append_event(conn: Connection, finding_id: str, **event: Any) -> None:
    conn.execute(finding_events.insert().values(**event_row(finding_id, **event)))


@dataclass
class _Batch:
    """What one recording writes, collected first and written with one executemany each."""

    inserts: list[dict[str, Any]]
    updates: list[dict[str, Any]]
    events: list[dict[str, Any]]
    summary: dict[str, int]


def record_findings(conn: Connection, run: RunInfo, results: Sequence[CheckResult], *, found_at: datetime,
                    deadlines: Deadlines, recurrence_periods: int, config_hash: str, zone: tzinfo) -> RecordSummary:
    """Insert new findings and update known ones, in a constant number of statements."""
    problems = _unique(result for result in results if is_finding(result))
    if not problems:
        return RecordSummary()
    rule_ids = sorted({result.rule_id for result in problems})
    by_period, still_open = _existing(conn, run, rule_ids)
    previous = _closed_recently(conn, run, rule_ids, recurrence_periods, zone)
    batch = _Batch([], [], [], {"raised": 0, "updated": 0, "unchanged": 0, "recurring": 0, "referred": 0})
    for result in problems:
        key = (result.rule_id, result.entity_type, result.entity_id)
        values = _finding_values(result, run, config_hash)
        existing = by_period.get(key) or (still_open.get(key) if result.entity_type in RECORD_ENTITIES else None)
        if existing is None:
            _insert(batch, run, result, values, previous.get(key), found_at, deadlines)
        elif existing["status"] == WITHDRAWN:
            batch.summary["unchanged"] += 1
        elif run.kind in OWN_FOLDER_KINDS and existing["audit_run_id"] != run.id:
            _refer(batch, existing, run, values, found_at)
        else:
            _update(batch, existing, run, values, found_at, deadlines)
    _write(conn, batch)
    return RecordSummary(**batch.summary)


def _unique(results: Iterable[CheckResult]) -> list[CheckResult]:
    """One result per rule and entity; a rule judged twice on an entity keeps the last judgement."""
    return list({(r.rule_id, r.entity_type, r.entity_id): r for r in results}.values())


def _existing(conn: Connection, run: RunInfo, rule_ids: list[str]) -> tuple[dict[Key, RowMapping],
                                                                            dict[Key, RowMapping]]:
    """This period's findings of the rules (withdrawn ones too: they are not raised again), and the
    open per-record findings of earlier periods; each says whether the audit lead regraded it."""
    regraded = sa.exists().where(finding_events.c.finding_id == findings.c.id, finding_events.c.action == REGRADE)
    rows = conn.execute(sa.select(*(findings.c[name] for name in _COMPARED), regraded.label("regraded")).where(
        findings.c.rule_id.in_(rule_ids),
        sa.or_(findings.c.period == run.period.label,
               sa.and_(findings.c.status.not_in(ENDED), findings.c.entity_type.in_(sorted(RECORD_ENTITIES))))
    )).mappings().all()
    by_period: dict[Key, RowMapping] = {}
    still_open: dict[Key, RowMapping] = {}
    for row in sorted(rows, key=lambda r: r["found_at"]):
        key = (row["rule_id"], row["entity_type"], row["entity_id"])
        if row["period"] == run.period.label:
            by_period[key] = row
        else:
            still_open[key] = row
    return by_period, still_open


def _closed_recently(conn: Connection, run: RunInfo, rule_ids: list[str], window: int,
                     zone: tzinfo) -> dict[Key, str]:
    """(rule, entity type, entity) -> the finding closed within `window` periods, newest first."""
    if window <= 0:
        return {}
    since = shift(run.period, -window).start if run.period.kind != "range" else run.period.start
    rows = conn.execute(
        sa.select(findings.c.id, findings.c.rule_id, findings.c.entity_type, findings.c.entity_id).where(
            findings.c.rule_id.in_(rule_ids), findings.c.status == CLOSED, findings.c.period != run.period.label,
            findings.c.closed_at >= to_db(since.replace(tzinfo=zone)),
        ).order_by(findings.c.closed_at)
    ).all()
    return {(row.rule_id, row.entity_type, row.entity_id): row.id for row in rows}


def _finding_values(result: CheckResult, run: RunInfo, config_hash: str) -> dict[str, Any]:
    """What a finding stores: figures and facts, no texts; those are rendered in the reader's
    language when the finding is read."""
    evidence = {**_jsonable(result.evidence), "config_hash": config_hash}
    return {
        "audit": run.audit, "audit_run_id": run.id, "area": result.area,
        "department_id": result.department_id, "observed": result.observed, "target": result.target,
        "population": result.population, "evidence": evidence, "owner_id": result.owner_id,
        "severity": Severity(result.severity).value, "facts": _jsonable(result.facts),
        "last_period": run.period.label,
    }


def _insert(batch: _Batch, run: RunInfo, result: CheckResult, values: dict[str, Any], recurring_of: str | None,
            found_at: datetime, deadlines: Deadlines) -> None:
    finding_id = str(uuid.uuid4())
    severity = Severity(values["severity"]).raised() if recurring_of else Severity(values["severity"])
    due_at, plan_due_at = deadlines_for(severity, found_at, deadlines)
    batch.inserts.append({
        **values, "id": finding_id, "rule_id": result.rule_id, "period": run.period.label,
        "entity_type": result.entity_type, "entity_id": result.entity_id, "status": OPEN,
        "found_at": to_db(found_at), "due_at": to_db(due_at),
        "plan_due_at": to_db(plan_due_at) if plan_due_at else None, "recurring": recurring_of is not None,
        "updated_at": to_db(found_at), "severity": severity.value, "closed_at": None})
    batch.events.append(event_row(finding_id, at=found_at, actor="system", action="raised", to_status=OPEN,
                                  run_id=run.id, data={"severity": severity.value, "recurring_of": recurring_of,
                                                       "period": run.period.label}))
    batch.summary["raised"] += 1
    batch.summary["recurring"] += recurring_of is not None


def _update(batch: _Batch, existing: RowMapping, run: RunInfo, values: dict[str, Any], now: datetime,
            deadlines: Deadlines) -> None:
    """A rerun or a later period refreshes the figures and evidence; a changed severity or figure
    is an event, and a changed severity moves the deadlines with it. The severity the audit lead
    gave a regraded finding stands."""
    severity = Severity(values["severity"])
    if existing["regraded"]:
        severity = Severity(existing["severity"])
    elif existing["recurring"]:
        severity = severity.raised()
    new = {**values, "severity": severity.value}
    changed = {name: {"from": existing[name], "to": new[name]} for name in _FIGURES if existing[name] != new[name]}
    due_at, plan_due_at = existing["due_at"], existing["plan_due_at"]
    if "severity" in changed:
        found_at = from_db(existing["found_at"])
        assert found_at is not None
        moved = deadlines_for(severity, found_at, deadlines)
        due_at, plan_due_at = to_db(moved[0]), to_db(moved[1]) if moved[1] else None
    row = {**new, "due_at": due_at, "plan_due_at": plan_due_at,
           "updated_at": to_db(now) if changed else existing["updated_at"]}
    batch.updates.append({"b_id": existing["id"], **{f"v_{name}": value for name, value in row.items()}})
    if changed:
        batch.events.append(event_row(existing["id"], at=now, actor="system", action="rechecked", run_id=run.id,
                                      data={**changed, "period": run.period.label}))
    batch.summary["updated" if changed else "unchanged"] += 1


def _refer(batch: _Batch, existing: RowMapping, run: RunInfo, values: dict[str, Any], now: datetime) -> None:
    """A special audit or spot check found a problem already recorded by another run: the finding
    keeps its run, figures and deadlines; the event records what this run measured."""
    measured = {name: values[name] for name in _FIGURES}
    batch.events.append(event_row(existing["id"], at=now, actor="system", action="rechecked", run_id=run.id,
                                  data={"period": run.period.label, "referred": True, "measured": measured}))
    batch.summary["referred"] += 1


def of_run(run_id: str) -> sa.ColumnElement[bool]:
    """The findings a run reports: those it raised or updated, and those it referred to."""
    referred = sa.select(finding_events.c.finding_id).where(finding_events.c.audit_run_id == run_id,
                                                            finding_events.c.action == "rechecked")
    return sa.or_(findings.c.audit_run_id == run_id, findings.c.id.in_(referred))


def _write(conn: Connection, batch: _Batch) -> None:
    if batch.inserts:
        conn.execute(findings.insert(), batch.inserts)
    if batch.updates:
        # Bound names differ from the column names: SQLAlchemy reserves those for the SET clause.
        columns = [name.removeprefix("v_") for name in batch.updates[0] if name != "b_id"]
        statement = (findings.update().where(findings.c.id == sa.bindparam("b_id"))
                     .values({name: sa.bindparam(f"v_{name}") for name in columns}))
        conn.execute(statement, batch.updates)
    if batch.events:
        conn.execute(finding_events.insert(), batch.events)
