"""A spot check's first steps as Prefect tasks: whether to audit today, and the draw."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from opsaudit.audit import AuditContext
from opsaudit.checks.spot_check import audits_today, daily_chance
from opsaudit.flows.labels import add_tags, area_tags
from opsaudit.settings import load_settings
from opsaudit.spot_check import KIND, prepare


@task(cache_policy=NO_CACHE)
def decide_today() -> bool:
    """Whether today's tick audits, by the operating system's secure randomness."""
    per_month = load_settings().load_config().audits.spot_check.checks_per_month
    audits = audits_today(per_month)
    get_run_logger().info("spot check today: %s (chance %.1f%%, %d a month on average)",
                          "yes" if audits else "no", 100 * daily_chance(per_month), per_month)
    return audits


@task(cache_policy=NO_CACHE)
def draw_spot_check(seed: int | None, now: datetime | None) -> AuditContext:
    """Draw the key area, department and sample (from `seed`, or a fresh secure one), check what
    the audit needs, and tag the run with the area drawn."""
    context = prepare(load_settings(), seed, now)
    drawn = context.parameters["draw"]
    get_run_logger().info("spot check with seed %d: %s, department %s, %d of %d %s in %s", drawn["seed"],
                          drawn["area"], drawn["department_id"], drawn["sample_size"], drawn["population"],
                          drawn["table"], drawn["window"])
    if flow_run.get_id():
        add_tags(flow_run.get_id(), flow_run.get_tags(), [KIND, *area_tags([drawn["area"]])])
    return context
