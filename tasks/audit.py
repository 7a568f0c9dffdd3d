"""Prefect tasks of an audit: thin, typed wrappers around the engine and the store.

Retries only where I/O can fail for a passing reason (the store, the output folder, the Prefect
API), waiting longer each time; an error opsaudit diagnosed (a missing table, a run already in
progress) is not retried, nor are the SQL checks: a failing query is a real problem with the source.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.tasks import exponential_backoff

from opsaudit.audit import AuditContext, build_context, operations_manager, preflight
from opsaudit.checks import engine
from opsaudit.checks.results import CheckResult, Outcome, ResultSet
from opsaudit.config.loader import display_path
from opsaudit.errors import OpsauditError
from opsaudit.i18n import text
from opsaudit.settings import load_settings
from opsaudit.source import missing_tables
from opsaudit.store import findings as findings_store
from opsaudit.store import runs
from opsaudit.store.runs import RunInfo


def passing_failure(_task: Any, _task_run: Any, state: Any) -> bool:
    """Whether a failed I/O task may succeed on a retry: not when opsaudit diagnosed the error."""
    return not isinstance(state.data, OpsauditError)


def refused(error: OpsauditError) -> State:
    """A run or task ended by `error`, a mistake in what was asked or a setting or source unfit for
    it: Failed, with the error's one line as the message the dashboard shows, and no traceback in its log."""
    return Failed(message=str(error), data=error)


def refusal(step: State) -> State | None:
    """The run's refusal when its first step refused (see `refused`); None when the step succeeded.
    A step that failed any other way raises its error here: a defect shows its traceback."""
    if not step.is_failed():
        return None
    error = step.result(raise_on_failure=False)
    if isinstance(error, OpsauditError):
        return refused(error)
    return step.result()


# 2, 4 and 8 seconds, each give or take half.
IO_RETRIES: dict[str, Any] = {"retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=2),
                              "retry_jitter_factor": 0.5, "retry_condition_fn": passing_failure}


@task(cache_policy=NO_CACHE)
def resolve_period(audit: str, period: str | None, now: datetime | None) -> AuditContext | State:
    """Load settings, config and rules, fix the period the audit covers, and check that the
    source, the output folder and the store are fit for the audit before anything is written;
    the audit's context, or the Failed state that says in one line what is wrong (`refused`).

    Without --now, a scheduled run audits the period before its scheduled time, so a run that
    starts late (a worker was down) still audits the right period.
    """
    scheduled = flow_run.get_scheduled_start_time() if now is None and flow_run.get_id() else None
    try:
        settings = load_settings()
        # A mistake names the flow's parameter: the command line checks its --period before the flow runs.
        context = build_context(settings, audit, period=period, now=now or scheduled, option="period")
        preflight(context)
    except OpsauditError as exc:
        return refused(exc)
    get_run_logger().info(text("log.audit.period", settings.language, audit=audit, period=context.period.label))
    return context


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def open_run(context: AuditContext) -> RunInfo:
    """Record the audit run as started, with what it covers (a special audit's reason and scope, a
    spot check's draw) and the seed of its draw."""
    parameters = {"period": context.period.label, "now": context.now.isoformat(),
                  "rules": sorted({f"{r.rule_id}:{r.entity_type}" for r in context.rules}), **context.parameters}
    with context.store.begin() as conn:
        return runs.start_run(conn, audit=context.audit, kind=context.kind, period=context.period,
                              parameters=parameters, config_hash=context.config.digest(), seed=context.seed,
                              flow_run_id=str(flow_run.get_id() or "") or None)


@task(cache_policy=NO_CACHE)
def validate_data(context: AuditContext) -> tuple[ResultSet, set[str]]:
    """Data-quality expectations (Great Expectations) on every table the audit reads.

    Returns the results and the tables that exist, so rules on a missing table are skipped. An
    audit of some departments or of a sample runs no expectations (AuditContext.checks_data_quality).
    """
    from opsaudit.checks.quality import run_data_quality
    from opsaudit.checks.quality_config import load_rules, with_overrides

    tables = context.tables_checked()
    if not context.checks_data_quality:
        get_run_logger().info(text("log.data_quality.skipped", context.settings.language))
        return ResultSet(), set(tables) - missing_tables(context.source, tuple(tables))
    thresholds = context.config.thresholds
    where = display_path(context.settings.config_dir / "thresholds.yaml")
    rules = with_overrides(load_rules(), thresholds.rules, where)
    results = ResultSet(run_data_quality(context.source, tables, context.period, now=context.now,
                                         dq_bands=thresholds.dq_bands, rules=rules))
    available = set(tables) - missing_tables(context.source, tuple(tables))
    failed = sum(r.outcome is Outcome.FAILED for r in results)
    get_run_logger().info(text("log.data_quality.checked", context.settings.language, expectations=len(results),
                               failed=failed))
    return results, available


@task(cache_policy=NO_CACHE)
def compute_metrics(context: AuditContext, available: set[str]) -> engine.Computation:
    """Run every rule's SQL in the operational database."""
    return engine.compute(context.source, context.rules, context.period, now=context.now,
                          available=available, all_rules={r.rule_id: r for r in context.all_rules},
                          scope=context.scope)


@task(cache_policy=NO_CACHE)
def evaluate_results(computation: engine.Computation) -> ResultSet:
    """Judge each measurement against its rule."""
    return engine.evaluate(computation)


@task(cache_policy=NO_CACHE)
def collect_evidence(context: AuditContext, computation: engine.Computation, results: ResultSet) -> ResultSet:
    """Labelled sample records for the failed aggregates, one query per rule and entity type."""
    return engine.collect_samples(context.source, computation, results)


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def record_findings(context: AuditContext, run: RunInfo, results: ResultSet, available: set[str]) -> dict[str, int]:
    """Store the results and raise or refresh findings, idempotently per period.

    A problem with no owner of its own (data quality, the company result, a task without an
    owner in a department without a head) is owned by the operations manager.
    """
    thresholds = context.config.thresholds
    manager = operations_manager(context.source, context.settings.operations_department, available)
    results = ResultSet(replace(r, owner_id=manager) if r.is_problem and not r.owner_id else r for r in results)
    with context.store.begin() as conn:
        stored = runs.save_results(conn, run.id, results)
        summary = findings_store.record_findings(
            # Found at the audit's clock: --now fixes it for tests and backfills as for the checks.
            conn, run, results, found_at=context.now.replace(tzinfo=context.settings.tz),
            deadlines=thresholds.deadlines, recurrence_periods=thresholds.recurrence_periods,
            config_hash=context.config.digest(), zone=context.settings.tz)
    counts = {"results": stored, **asdict(summary)}
    get_run_logger().info(text("log.findings", context.settings.language, **counts))
    return counts


def outcome_counts(results: ResultSet) -> dict[str, Any]:
    """How many results ended in each outcome, and failures by severity (roll-ups excluded)."""
    by_outcome: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    for result in results:
        if result.facts.get("rollup"):
            continue
        by_outcome[result.outcome.value] = by_outcome.get(result.outcome.value, 0) + 1
        if result.is_problem and result.severity:
            by_severity[result.severity.value] = by_severity.get(result.severity.value, 0) + 1
    return {"outcomes": by_outcome, "problems": by_severity}


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def hand_over_to_reporting(context: AuditContext, run: RunInfo, results: ResultSet,
                           counts: dict[str, int]) -> Path:
    """Write the run's results as JSON under OPSAUDIT_OUTPUT_DIR, where the report renderer reads them."""
    folder = context.output_folder(run.id)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "audit_run_id": run.id, "audit": context.audit, "kind": context.kind, "period": context.period.label,
        "period_start": context.period.start.isoformat(), "period_end": context.period.end.isoformat(),
        **runs._jsonable(dict(context.parameters)),
        "summary": {**outcome_counts(results), "findings": counts},
        "results": [runs._jsonable({
            "rule_id": r.rule_id, "area": r.area, "entity_type": r.entity_type, "entity_id": r.entity_id,
            "department_id": r.department_id, "outcome": r.outcome.value,
            "severity": r.severity.value if r.severity else None, "observed": r.observed, "target": r.target,
            "population": r.population, "rollup": bool(r.facts.get("rollup")),
            "text": _text(r, context.settings.language), "sample_ids": r.evidence.get("sample_ids", []),
        }) for r in results],
    }
    path = folder / "results.json"
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _text(result: CheckResult, language: str) -> dict[str, str] | None:
    """A problem's title and description in the report language; other results need none."""
    from opsaudit.i18n import render_finding

    if not result.is_problem or result.facts.get("rollup"):
        return None
    text = render_finding(result.rule_id, result.entity_type, {**result.facts, "entity_id": result.entity_id}, language)
    return {"title": text.title, "description": text.description}


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def close_run(context: AuditContext, run: RunInfo, *, status: str, summary: dict[str, Any] | None = None,
              error: str | None = None) -> None:
    """Record how the run ended."""
    with context.store.begin() as conn:
        runs.finish_run(conn, run.id, status=status, summary=summary, error=error)
