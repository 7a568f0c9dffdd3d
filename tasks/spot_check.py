"""A spot check's first steps as Prefect tasks: whether to audit today, and the draw."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from opsaudit.audit import AuditContext
from opsaudit.checks.spot_check import audits_today, daily_chance
from opsaudit.errors import OpsauditError
from opsaudit.flows.labels import add_tags, area_tags
from opsaudit.i18n import text
from opsaudit.settings import load_settings
from opsaudit.spot_check import KIND, prepare
from opsaudit.tasks.audit import refused


@task(cache_policy=NO_CACHE)
def decide_today() -> bool:
    """Whether today's tick audits, by the operating system's secure randomness."""
    settings = load_settings()
    per_month = settings.load_config().audits.spot_check.checks_per_month
    audits = audits_today(per_month)
    get_run_logger().info(text("log.spot_check.today" if audits else "log.spot_check.not_today", settings.language,
                               chance=daily_chance(per_month), per_month=per_month))
    return audits


@task(cache_policy=NO_CACHE)
def draw_spot_check(seed: int | None, now: datetime | None) -> AuditContext | State:
    """Draw the key area, department and sample (from `seed`, or a fresh secure one), check what
    the audit needs, and tag the run with the area drawn; or the Failed state that says in one line
    what is unfit (`refused`)."""
    try:
        settings = load_settings()
        context = prepare(settings, seed, now)
    except OpsauditError as exc:
        return refused(exc)
    drawn = context.parameters["draw"]
    get_run_logger().info(text("audit_run.spot_check.drawn", settings.language, seed=drawn["seed"], area=drawn["area"],
                               department=drawn["department_id"], period=drawn["window"],
                               population=drawn["population"], records=drawn["records"],
                               size=drawn["sample_size"]))
    if flow_run.get_id():
        add_tags(flow_run.get_id(), flow_run.get_tags(), [KIND, *area_tags([drawn["area"]])])
    return context
