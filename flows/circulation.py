"""The `circulation` flow, monthly (seed 000 §6.3): the audit situation and the progress of
rectification, circulated to all operations staff, then the mail delivered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from opsaudit.tasks import circulation as steps
from opsaudit.tasks.mail import deliver_outbox


def circulation_run_name() -> str:
    """`circulation 2026-11-01`: the day the run circulates the month before."""
    from prefect.runtime import flow_run

    moment = flow_run.parameters.get("now") or flow_run.get_scheduled_start_time()
    return f"{flow_run.flow_name} {moment:%Y-%m-%d}"


@flow(name="circulation", flow_run_name=circulation_run_name,
      description="Circulate the month's audits, problems and rectification progress to all operations staff "
                  "(seed 000 §6.3), once a month, and deliver the mail.")
def monthly_circulation(month: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    run = steps.prepare_circulation(month, now)
    result = steps.circulate_task(run)
    delivery = deliver_outbox(run.now)
    return {"audit": "circulation", **result, "mail": delivery}
