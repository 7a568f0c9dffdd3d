"""Audit runs and the check results each run produced."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsaudit.checks.results import FINDING_ONLY, PLAIN_TYPES, CheckResult, Samples
from opsaudit.errors import OpsauditError
from opsaudit.periods import Period
from opsaudit.store.schema import audit_runs, check_results
from opsaudit.store.times import from_db, to_db, utcnow

RUNNING, ABANDONED = "running", "abandoned"


class RunInProgress(OpsauditError):
    """The same audit and period is being audited by another process."""


@dataclass(frozen=True)
class RunInfo:
    """What findings need to know about the run that raised them."""

    id: str
    audit: str
    kind: str
    period: Period


# Kinds whose runs each answer their own request (a stated reason and scope, or a random draw): two
# of them over the same days are different audits, each with its own report and review.
OWN_FOLDER_KINDS = ("special", "spot_check")


def run_output_folder(output_dir: Path, audit: str, kind: str, period: str, run_id: str) -> Path:
    """OPSAUDIT_OUTPUT_DIR/audit/period, where a periodic audit's rerun replaces its period's report
    as it refreshes the same findings; below it, the run's short id for a special audit or spot check."""
    folder = output_dir / audit / period
    return folder / run_id[:8] if kind in OWN_FOLDER_KINDS else folder


def start_run(conn: Connection, *, audit: str, kind: str, period: Period, parameters: dict[str, Any],
              config_hash: str, seed: int | None = None, flow_run_id: str | None = None,
              started_at: datetime | None = None) -> RunInfo:
    """Record the run as running in this process; RunInProgress if the period is being audited."""
    mark_abandoned(conn)
    run = RunInfo(str(uuid.uuid4()), audit, kind, period)
    values = dict(id=run.id, audit=audit, kind=kind, period=period.label, period_start=period.start,
                  period_end=period.end, parameters=parameters, started_at=to_db(started_at or utcnow()),
                  status=RUNNING, seed=seed, config_hash=config_hash, flow_run_id=flow_run_id,
                  host=socket.gethostname(), pid=os.getpid())
    try:
        with conn.begin_nested():
            conn.execute(audit_runs.insert().values(**values))
    except sa.exc.IntegrityError:
        other = conn.execute(sa.select(audit_runs.c.id, audit_runs.c.host, audit_runs.c.pid).where(
            audit_runs.c.audit == audit, audit_runs.c.period == period.label,
            audit_runs.c.status == RUNNING)).first()
        where = f" (run {other.id}, process {other.pid} on {other.host})" if other else ""
        raise RunInProgress(f"{audit} {period.label} is already being audited{where}; "
                            "wait for it to finish") from None
    return run


_HOLDERS = uuid.UUID("5b0c2a4e-8f1d-4a57-9c1e-0d6f3b7a2e19")


def holding_run(conn: Connection, *, audit: str, period: Period, config_hash: str) -> RunInfo:
    """The one run of `audit` (kind `audit` too) that holds what people record by hand in `period`,
    such as manual findings: made succeeded on first use, under an id derived from the audit and
    period, so that two people recording at once share it (the second insert fails on the key and
    finds the first)."""
    run = RunInfo(str(uuid.uuid5(_HOLDERS, f"{audit}:{period.label}")), audit, audit, period)
    if conn.execute(sa.select(audit_runs.c.id).where(audit_runs.c.id == run.id)).first() is None:
        now = to_db(utcnow())
        try:
            with conn.begin_nested():
                conn.execute(audit_runs.insert().values(
                    id=run.id, audit=audit, kind=audit, period=period.label, period_start=period.start,
                    period_end=period.end, parameters={}, started_at=now, finished_at=now, status="succeeded",
                    config_hash=config_hash))
        except sa.exc.IntegrityError:
            pass  # made by the other person's transaction, which has committed by now
    return run


def mark_abandoned(conn: Connection) -> int:
    """Mark `abandoned` the runs of this host still `running` whose process is gone (killed or
    crashed), so they show as such and no longer hold their period. Returns how many."""
    host = socket.gethostname()
    stale = [row.id for row in conn.execute(
        sa.select(audit_runs.c.id, audit_runs.c.pid, audit_runs.c.started_at)
        .where(audit_runs.c.status == RUNNING, audit_runs.c.host == host))
        if not process_alive(row.pid, from_db(row.started_at))]
    if stale:
        conn.execute(audit_runs.update().where(audit_runs.c.id.in_(stale)).values(
            status=ABANDONED, finished_at=to_db(utcnow()), error="the process running the audit ended without "
                                                                 "finishing it"))
    return len(stale)


def process_alive(pid: int | None, since: datetime | None) -> bool:
    """Whether process `pid` exists and is the one that started at or before `since` (not a reused pid)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = _process_start(pid)
    return started is None or since is None or started <= since.timestamp() + 2


def _process_start(pid: int) -> float | None:
    """The process's start as a Unix time, from /proc; None where /proc is not there."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def finish_run(conn: Connection, run_id: str, *, status: str, summary: dict[str, Any] | None = None,
               error: str | None = None) -> None:
    conn.execute(audit_runs.update().where(audit_runs.c.id == run_id).values(
        status=status, finished_at=to_db(utcnow()), summary=summary, error=error, pid=None))


def set_run_seed(conn: Connection, run_id: str, seed: int, parameters: dict[str, Any]) -> None:
    """Record the sampling seed and the draw's parameters on the run, so the draw can be re-performed."""
    current = conn.execute(sa.select(audit_runs.c.parameters).where(audit_runs.c.id == run_id)).scalar_one()
    conn.execute(audit_runs.update().where(audit_runs.c.id == run_id)
                 .values(seed=seed, parameters={**current, "sampling": parameters}))


# The evidence a finding keeps for the auditor; a result of the run needs only its figures.
_FINDING_EVIDENCE = (*FINDING_ONLY, "sample_ids", "facts")


def save_results(conn: Connection, run_id: str, results: Sequence[CheckResult]) -> int:
    """Store every result of the run (passes, warnings, failures, insufficient data): its figures
    and facts, for the reports' KPI tables; a failure's queries and samples are its finding's."""
    conn.execute(check_results.delete().where(check_results.c.audit_run_id == run_id))
    rows = [{
        "audit_run_id": run_id, "rule_id": r.rule_id, "area": r.area, "entity_type": r.entity_type,
        "entity_id": r.entity_id, "department_id": r.department_id, "outcome": r.outcome.value,
        "severity": r.severity.value if r.severity else None, "observed": r.observed, "target": r.target,
        "population": r.population,
        "details": {"facts": _jsonable(r.facts),
                    "evidence": _jsonable({k: v for k, v in r.evidence.items() if k not in _FINDING_EVIDENCE})},
    } for r in _unique(results)]
    if rows:
        conn.execute(check_results.insert(), rows)
    return len(rows)


def _unique(results: Sequence[CheckResult]) -> list[CheckResult]:
    """One result per rule and entity; a rule judged twice on an entity keeps the last judgement."""
    seen: dict[tuple[str, str, str], CheckResult] = {}
    for result in results:
        seen[(result.rule_id, result.entity_type, result.entity_id)] = result
    return list(seen.values())


def _jsonable(value: Any) -> Any:
    # Plain values first: evidence holds thousands of them per run.
    if value is None or type(value) in PLAIN_TYPES:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Samples):
        return value.records()  # its values are plain already
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)):  # enums and other subclasses of the plain types
        return value
    if hasattr(value, "__float__"):
        return float(value)
    return str(value)
