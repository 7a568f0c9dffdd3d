"""One Prefect flow per periodic audit (seed 000 section 4), and the steps every audit takes once
it knows what it covers (`run_audit`, shared with the special audit and spot check flows)."""

from __future__ import annotations

import ctypes
import signal
from contextlib import suppress
from datetime import datetime
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.exceptions import TerminationSignal

from opsaudit.audit import AuditContext
from opsaudit.errors import OpsauditError
from opsaudit.flows.labels import audit_run_name, tag_run_with_areas
from opsaudit.signals import stop_asked
from opsaudit.tasks import audit as steps
from opsaudit.tasks.alerts import alert_major_problems
from opsaudit.tasks.artifacts import publish_artifacts
from opsaudit.tasks.report import write_reports
from opsaudit.tasks.review import submit_report
from opsaudit.tasks.sampling import draw_quality_sample

INTERRUPTED = "interrupted (Ctrl-C or SIGTERM)"


class AuditFailed(OpsauditError):
    """An audit run stopped by an error opsaudit did not foresee, named in one line (the dashboard
    shows a failed run's cause as its state message); the error itself is its __cause__."""


def run_periodic_audit(audit: str, period: str | None, now: datetime | None) -> dict[str, Any] | State:
    """The shared body of the periodic flows; must run inside a flow.

    A period that cannot be audited (a typo in the Prefect UI's form, a month not over) or a setting
    or source unfit for the audit ends the run Failed with that one line as the message the
    dashboard shows, before anything is recorded; a defect fails it with its traceback.
    """
    resolved = steps.resolve_period(audit, period, now, return_state=True)
    return steps.refusal(resolved) or run_audit(resolved.result())


def run_audit(context: AuditContext) -> dict[str, Any]:
    """Open the run, check the data, judge the rules, record findings, hand over to reporting,
    publish the dashboard's artifacts and close the run; its summary. Must run inside a flow."""
    run = steps.open_run(context)
    try:
        dq_results, available = steps.validate_data(context)
        stop_if_told()
        computation = steps.compute_metrics(context, available)
        results = steps.evaluate_results(computation)
        results = steps.collect_evidence(context, computation, results)
        all_results = dq_results + results
        stop_if_told()
        counts = steps.record_findings(context, run, all_results, available)
        # The records and queries now live with the findings; the steps after need ids and figures.
        all_results.release_evidence()
        return_freed_memory()
        # Seed 000 §6.2: a major problem reaches the managers at once, never after the review.
        alerts = alert_major_problems(context, run)
        sample = draw_quality_sample(context, run) if context.draws_quality_sample else None
        output = steps.hand_over_to_reporting(context, run, all_results, counts)
        review = submit_report(context, run, write_reports(context, run))
        summary = {"audit_run_id": run.id, "audit": context.audit, "kind": context.kind,
                   "period": context.period.label, **steps.outcome_counts(all_results), "findings": counts,
                   "output": str(output), "alerts": len(alerts["alerted"]),
                   "report": {language: r["status"] for language, r in review["reports"].items()},
                   **context.parameters}
        if sample is not None:
            summary["sample"] = sample
        if context.seed is not None:
            summary["seed"] = context.seed
        # Last, so that the link goes to a report the steps before have written.
        publish_artifacts(context, all_results, summary)
        stop_if_told()
    except Exception as exc:
        if stopping():
            # The stop landed inside Prefect's own bookkeeping of a task (its task engine then
            # raises ValueError "Task run is not set"): an error of the stop, recorded as the stop.
            steps.close_run.fn(context, run, status="interrupted", error=INTERRUPTED)
            raise KeyboardInterrupt("SIGTERM") from exc
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:2000]
        steps.close_run(context, run, status="failed", error=cause)
        if isinstance(exc, OpsauditError):
            raise
        raise AuditFailed(f"{type(exc).__name__}: {cause}") from exc
    except BaseException:
        # Ctrl-C or SIGTERM: record it directly, Prefect is shutting down and runs no more tasks.
        steps.close_run.fn(context, run, status="interrupted", error=INTERRUPTED)
        raise
    steps.close_run(context, run, status="succeeded", summary=summary)
    return summary


def stopping() -> bool:
    """Whether this flow run has been told to stop: by the command's own signal handler, or by the
    Prefect runner (serve stopping, a cancel from the dashboard)."""
    from prefect._internal import control_listener  # no public API tells a flow run of the intent

    return stop_asked() or control_listener.get_intent() is not None


def stop_if_told() -> None:
    """Stop here if the Prefect runner has told this flow run to stop (serve stopping, or a
    cancel from the dashboard), though its SIGTERM never raised.

    The runner sends its intent on a control channel, then SIGTERM. Python drops the exception a
    signal handler raises while it runs a weakref callback (importing Great Expectations runs
    thousands), so without this the audit would carry on and close as succeeded.
    """
    from prefect._internal import control_listener  # no public API tells a flow run of the intent

    if stop_asked():
        raise KeyboardInterrupt("SIGTERM")   # the command's own stop (opsaudit/signals.py), never raised
    if control_listener.get_intent() is not None:
        raise TerminationSignal(signal=signal.SIGTERM)


def return_freed_memory() -> None:
    """Hand the heap the evidence step freed back to the system before the report lays out its
    pages: glibc keeps it otherwise, and the report's peak would stack on top (2,000 agents: 30 MB)."""
    with suppress(AttributeError, OSError):  # not glibc: nothing to hand back this way
        ctypes.CDLL(None).malloc_trim(0)


# Readable run names and area tags on the dashboard, for runs started any way.
ON_DASHBOARD: dict[str, Any] = {"flow_run_name": audit_run_name, "on_running": [tag_run_with_areas]}


@flow(name="cs-weekly", description="Weekly customer-service quality sampling (previous ISO week).", **ON_DASHBOARD)
def cs_weekly(period: str | None = None, now: datetime | None = None) -> dict[str, Any] | State:
    return run_periodic_audit("cs-weekly", period, now)


@flow(name="cs-monthly", description="Monthly customer-service evaluation (previous month).", **ON_DASHBOARD)
def cs_monthly(period: str | None = None, now: datetime | None = None) -> dict[str, Any] | State:
    return run_periodic_audit("cs-monthly", period, now)


@flow(name="execution-monthly", description="Monthly execution audit (previous month).", **ON_DASHBOARD)
def execution_monthly(period: str | None = None, now: datetime | None = None) -> dict[str, Any] | State:
    return run_periodic_audit("execution-monthly", period, now)


@flow(name="planning-quarterly", description="Quarterly planning audit (previous quarter).", **ON_DASHBOARD)
def planning_quarterly(period: str | None = None, now: datetime | None = None) -> dict[str, Any] | State:
    return run_periodic_audit("planning-quarterly", period, now)


@flow(name="data-quarterly", description="Quarterly data-analysis audit, data quality on every table.", **ON_DASHBOARD)
def data_quarterly(period: str | None = None, now: datetime | None = None) -> dict[str, Any] | State:
    return run_periodic_audit("data-quarterly", period, now)


PERIODIC_FLOWS = {
    "cs-weekly": cs_weekly,
    "cs-monthly": cs_monthly,
    "execution-monthly": execution_monthly,
    "planning-quarterly": planning_quarterly,
    "data-quarterly": data_quarterly,
}
