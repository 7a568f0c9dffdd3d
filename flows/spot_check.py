"""The spot check flow (不定期抽查, seed 000 §4.1).

The `spot-check` deployment ticks daily with `decide` on: each tick decides at random whether to
audit today (checks/spot_check.py), so no date follows from the schedule. Started by hand
(`opsaudit run spot-check`, or a custom run without `decide`), it draws and audits at once; with a
seed it re-performs that seed's draw.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Annotated, Any

from prefect import flow
from prefect.client.schemas.objects import State
from pydantic import Field

from opsaudit.flows.audits import run_audit
from opsaudit.spot_check import AUDIT
from opsaudit.tasks.audit import refusal
from opsaudit.tasks.spot_check import decide_today, draw_spot_check

Seed = Annotated[int, Field(ge=0, lt=2**63, description="Re-perform the draw of this seed.")]


def spot_check_run_name() -> str:
    """`spot-check 2026-11-05`: the day of the tick (or of `now`), in OPSAUDIT_TIMEZONE."""
    from prefect.runtime import flow_run

    from opsaudit.errors import OpsauditError
    from opsaudit.settings import load_settings

    moment = flow_run.parameters.get("now") or flow_run.get_scheduled_start_time()
    with suppress(OpsauditError):  # a bad OPSAUDIT_TIMEZONE: the run's first task reports it
        moment = moment.astimezone(load_settings().tz) if moment.tzinfo else moment
    return f"{AUDIT} {moment:%Y-%m-%d}"


@flow(name="spot-check", description="Spot check (不定期抽查): on a random day, a key area, a department and a "
                                     "sample of records, audited over the last 30 days.",
      flow_run_name=spot_check_run_name)
def spot_check(seed: Seed | None = None, now: datetime | None = None, decide: bool = False) -> dict[str, Any] | State:
    """Audit a drawn key area, department and sample of records over the last 30 days; with
    `decide`, only if today's tick says so. Its summary, or `{"audited": false}`.

    Args:
        seed: re-perform the draw of this seed (on the window its spot check recorded); none: a new draw.
        now: fixes the clock: the 30 days before its day are audited.
        decide: decide at random whether to audit today, as the daily schedule does; off: audit now.

    A setting or source unfit for the audit ends the run Failed with that one line as its message.
    """
    if decide and not decide_today():
        return {"audit": AUDIT, "audited": False}
    drawn = draw_spot_check(seed, now, return_state=True)
    return refusal(drawn) or {**run_audit(drawn.result()), "audited": True}
