"""Findings: one per (rule, entity, period), raised by audits and kept through rectification.

Every change is also written to the append-only event table.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.checks.results import CheckResult, Outcome, Severity
from opsaudit.config.models import Deadlines
from opsaudit.periods import shift
from opsaudit.store.runs import RunInfo, _jsonable
from opsaudit.store.schema import finding_events, findings
from opsaudit.store.times import from_db, to_db

OPEN = "open"
CLOSED = "closed"


@dataclass(frozen=True)
class RecordSummary:
    raised: int = 0
    updated: int = 0
    unchanged: int = 0
    recurring: int = 0

    @property
    def total(self) -> int:
        return self.raised + self.updated + self.unchanged


def is_finding(result: CheckResult) -> bool:
    """Failed results become findings; company roll-ups of department results only inform reports."""
    return result.outcome is Outcome.FAILED and result.severity is not None and not result.facts.get("rollup")


def deadlines_for(severity: Severity, found_at: datetime, deadlines: Deadlines) -> tuple[datetime, datetime | None]:
    """(due_at, plan_due_at): major problems owe a plan within days and the fix later."""
    days = {Severity.GENERAL: deadlines.general, Severity.IMPORTANT: deadlines.important,
            Severity.MAJOR: deadlines.major}[severity]
    plan_due = found_at + timedelta(days=deadlines.major_plan) if severity is Severity.MAJOR else None
    return found_at + timedelta(days=days), plan_due


def append_event(conn: Connection, finding_id: str, *, at: datetime, actor: str, action: str,
                 from_status: str | None = None, to_status: str | None = None, run_id: str | None = None,
                 note: str | None = None, data: dict[str, Any] | None = None) -> None:
    conn.execute(finding_events.insert().values(
        finding_id=finding_id, at=to_db(at), actor=actor, action=action, from_status=from_status,
        to_status=to_status, audit_run_id=run_id, note=note, data=_jsonable(data or {})))


def _recurs(conn: Connection, result: CheckResult, run: RunInfo, window: int, zone: tzinfo) -> str | None:
    """The id of a closed finding on the same rule and entity, closed within `window` periods."""
    if window <= 0:
        return None
    since = shift(run.period, -window).start if run.period.kind != "range" else run.period.start
    return conn.execute(
        sa.select(findings.c.id).where(
            findings.c.rule_id == result.rule_id, findings.c.entity_type == result.entity_type,
            findings.c.entity_id == result.entity_id, findings.c.status == CLOSED,
            findings.c.period != run.period.label, findings.c.closed_at >= to_db(since.replace(tzinfo=zone)),
        ).order_by(findings.c.closed_at.desc()).limit(1)
    ).scalar()


def record_findings(conn: Connection, run: RunInfo, results: Sequence[CheckResult], *, found_at: datetime,
                    deadlines: Deadlines, recurrence_periods: int, language: str,
                    config_hash: str, zone: tzinfo) -> RecordSummary:
    """Insert new findings, update those of a rerun, never duplicate (rule, entity, period)."""
    raised = updated = unchanged = recurring = 0
    for result in results:
        if not is_finding(result):
            continue
        key = (findings.c.rule_id == result.rule_id, findings.c.entity_type == result.entity_type,
               findings.c.entity_id == result.entity_id, findings.c.period == run.period.label)
        existing = conn.execute(sa.select(findings).where(*key)).mappings().first()
        values = _finding_values(result, run, language, config_hash)
        if existing is None:
            previous = _recurs(conn, result, run, recurrence_periods, zone)
            severity = Severity(result.severity).raised() if previous else Severity(result.severity)
            _insert(conn, run, result, values, severity, previous, found_at, deadlines)
            raised += 1
            recurring += bool(previous)
        elif _update(conn, existing, run, values, found_at, deadlines):
            updated += 1
        else:
            unchanged += 1
    return RecordSummary(raised, updated, unchanged, recurring)


def _finding_values(result: CheckResult, run: RunInfo, language: str, config_hash: str) -> dict[str, Any]:
    text = result.evidence.get("text", {}).get(language, {})
    evidence = {**_jsonable(result.evidence), "config_hash": config_hash}
    return {
        "audit": run.audit, "audit_run_id": run.id, "area": result.area,
        "department_id": result.department_id, "title": text.get("title", result.rule_id),
        "description": text.get("description", ""), "observed": result.observed, "target": result.target,
        "population": result.population, "evidence": evidence, "owner_id": result.owner_id,
        "severity": Severity(result.severity).value,
    }


def _insert(conn: Connection, run: RunInfo, result: CheckResult, values: dict[str, Any], severity: Severity,
            previous: str | None, found_at: datetime, deadlines: Deadlines) -> None:
    finding_id = str(uuid.uuid4())
    due_at, plan_due_at = deadlines_for(severity, found_at, deadlines)
    conn.execute(findings.insert().values(
        id=finding_id, rule_id=result.rule_id, period=run.period.label, entity_type=result.entity_type,
        entity_id=result.entity_id, status=OPEN, found_at=to_db(found_at), due_at=to_db(due_at),
        plan_due_at=to_db(plan_due_at) if plan_due_at else None, recurring=previous is not None,
        updated_at=to_db(found_at), **{**values, "severity": severity.value},
    ))
    append_event(conn, finding_id, at=found_at, actor="system", action="raised", to_status=OPEN, run_id=run.id,
                 data={"severity": severity.value, "recurring_of": previous})


def _update(conn: Connection, existing: RowMapping, run: RunInfo, values: dict[str, Any], now: datetime,
            deadlines: Deadlines) -> bool:
    """A rerun refreshes the evidence; a changed severity or figure is an event. True if it changed."""
    severity = Severity(values["severity"])
    if existing["recurring"]:
        severity = severity.raised()
    changed = {name: (existing[name], new) for name, new in
               (("severity", severity.value), ("observed", values["observed"]),
                ("population", values["population"])) if existing[name] != new}
    update = {**values, "severity": severity.value}
    if "severity" in changed:
        found_at = from_db(existing["found_at"])
        assert found_at is not None
        due_at, plan_due_at = deadlines_for(severity, found_at, deadlines)
        update |= {"due_at": to_db(due_at), "plan_due_at": to_db(plan_due_at) if plan_due_at else None}
    if changed:
        update["updated_at"] = to_db(now)
    conn.execute(findings.update().where(findings.c.id == existing["id"]).values(**update))
    if changed:
        append_event(conn, existing["id"], at=now, actor="system", action="rechecked", run_id=run.id,
                     data={name: {"from": old, "to": new} for name, (old, new) in changed.items()})
    return bool(changed)
