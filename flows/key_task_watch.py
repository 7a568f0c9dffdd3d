"""The `key-task-watch` flow, daily (seed 000 §4.2.2): warn of the key tasks overdue or due soon
and not started, once per task and state, then deliver the mail. A warning is not a finding."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from opsaudit.flows.labels import daily_run_name
from opsaudit.tasks import key_task_watch as steps
from opsaudit.tasks.mail import deliver_outbox


@flow(name="key-task-watch", flow_run_name=daily_run_name,
      description="Warn the owner and the department head of each high or critical task that is overdue, or due "
                  "within two days and not started, once per task and state, and deliver the mail.")
def key_task_watch(now: datetime | None = None) -> dict[str, Any]:
    run = steps.prepare_watch(now)
    warned = steps.warn_key_tasks(run)
    delivery = deliver_outbox(run.now)
    return {"audit": "key-task-watch", "now": run.now.isoformat(timespec="seconds"), **warned, "mail": delivery}
