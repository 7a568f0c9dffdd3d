"""The `rectification-tracking` flow, daily (seed 000 §5.4): remind, escalate, report progress, send."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State

from opsaudit.tasks import rectification as steps
from opsaudit.tasks.audit import refusal
from opsaudit.tasks.mail import deliver_outbox


def tracking_run_name() -> str:
    """`rectification-tracking 2026-11-02`: the day the run tracks."""
    from prefect.runtime import flow_run

    moment = flow_run.parameters.get("now") or flow_run.get_scheduled_start_time()
    return f"{flow_run.flow_name} {moment:%Y-%m-%d}"


@flow(name="rectification-tracking", flow_run_name=tracking_run_name,
      description="Remind owners before their rectification deadline, escalate overdue rectification up the "
                  "ladder, send the weekly progress report, and deliver the mail.")
def rectification_tracking(now: datetime | None = None) -> dict[str, Any] | State:
    """A setting or directory unfit for the tracking ends the run Failed with that one line as its
    message, before anything is written."""
    prepared = steps.prepare_tracking(now, return_state=True)
    stop = refusal(prepared)
    if stop is not None:
        return stop
    run = prepared.result()
    tracked = steps.remind_and_escalate(run)
    week = steps.report_progress(run)
    delivery = deliver_outbox(run.now)
    return {"audit": "rectification-tracking", "now": run.now.isoformat(timespec="seconds"), **tracked,
            "progress_report": week, "mail": delivery}
