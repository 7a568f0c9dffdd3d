"""How audit flow runs look on the Prefect dashboard: a readable name and tags by area.

Both are worked out as a run starts, from the run's parameters and the configured calendar, so a
run started by hand, by `opsaudit run` or by a schedule reads the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from opsaudit.errors import OpsauditError


def area_tags(areas: Iterable[str]) -> list[str]:
    """Dashboard tags for the audit areas a run covers, e.g. `area:customer_service`."""
    return [f"area:{area}" for area in areas]


def run_name(audit: str, period: str | None, moment: datetime) -> str:
    """`cs-monthly 2026-10`: the audit and the period it audits.

    Without a period the run audits the period before `moment` (its `now`, or its scheduled time),
    as tasks/audit.py resolves it.
    """
    if period:
        return f"{audit} {period}"
    from opsaudit.audit import resolve_period
    from opsaudit.config.loader import load_config
    from opsaudit.settings import load_settings

    try:
        settings = load_settings()
        return f"{audit} {resolve_period(settings, load_config(settings.config_dir), audit, None, moment).label}"
    except OpsauditError:
        # The run's first task reports the bad setting in full; the name still says when it was due.
        return f"{audit} {moment:%Y-%m-%d}"


def audit_run_name() -> str:
    """The name Prefect gives an audit flow run as it starts (the flows' `flow_run_name`)."""
    from prefect.runtime import flow_run

    parameters: dict[str, Any] = flow_run.parameters
    moment = parameters.get("now") or flow_run.get_scheduled_start_time()
    return run_name(flow_run.flow_name, parameters.get("period"), moment)


def daily_run_name() -> str:
    """`key-task-watch 2026-11-02`: a daily flow's run, named by the day it watches."""
    from prefect.runtime import flow_run

    moment = flow_run.parameters.get("now") or flow_run.get_scheduled_start_time()
    return f"{flow_run.flow_name} {moment:%Y-%m-%d}"


def audit_areas(audit: str) -> tuple[str, ...]:
    """The areas the configured calendar gives an audit; none for an audit it does not list."""
    from opsaudit.config.loader import load_config
    from opsaudit.settings import load_settings

    plans = load_config(load_settings().config_dir).audits.audits
    plan = plans.get(audit)  # type: ignore[call-overload]
    return plan.areas if plan is not None else ()


def tag_run_with_areas(flow: Any, flow_run: Any, state: Any) -> None:
    """On-running hook: add the audit's area tags to the run, whoever started it.

    Runs of a deployment already carry its tags; a run started by calling the flow has none.
    """
    add_tags(flow_run.id, flow_run.tags, area_tags(audit_areas(flow.name)))


def add_tags(flow_run_id: Any, current: Iterable[str], tags: Iterable[str]) -> None:
    """Add `tags` to a flow run whose tags are `current`, unless it has them already."""
    from prefect import get_client

    wanted = set(tags)
    if wanted <= set(current):
        return
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run_id, tags=sorted(set(current) | wanted))
