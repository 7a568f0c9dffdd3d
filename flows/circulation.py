"""The `circulation` flow, monthly (seed 000 §6.3): the audit situation and the progress of
rectification, circulated to all operations staff, then the mail delivered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State

from opsaudit.tasks import circulation as steps
from opsaudit.tasks.audit import refusal
from opsaudit.tasks.mail import deliver_outbox


def circulation_run_name() -> str:
    """`circulation 2026-11-01`: the day the run circulates the month before."""
    from prefect.runtime import flow_run

    moment = flow_run.parameters.get("now") or flow_run.get_scheduled_start_time()
    return f"{flow_run.flow_name} {moment:%Y-%m-%d}"


@flow(name="circulation", flow_run_name=circulation_run_name,
      description="Circulate the month's audits, problems and rectification progress to all operations staff "
                  "(seed 000 §6.3), once a month, and deliver the mail.")
def monthly_circulation(month: str | None = None, now: datetime | None = None) -> dict[str, Any] | State:
    """A month that cannot be circulated, or a setting unfit for it, ends the run Failed with that
    one line as its message, before anything is written."""
    prepared = steps.prepare_circulation(month, now, return_state=True)
    stop = refusal(prepared)
    if stop is not None:
        return stop
    run = prepared.result()
    result = steps.circulate_task(run)
    delivery = deliver_outbox(run.now)
    return {"audit": "circulation", **result, "mail": delivery}
