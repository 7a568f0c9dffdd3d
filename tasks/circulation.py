"""Prefect tasks of the monthly circulation: thin wrappers around opsaudit.reports.circulation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from sqlalchemy.engine import Engine

from opsaudit.config.loader import Config
from opsaudit.errors import OpsauditError
from opsaudit.i18n import text
from opsaudit.periods import Period
from opsaudit.reports.circulation import circulate
from opsaudit.reports.recipients import Directory, not_told
from opsaudit.settings import Settings, load_settings
from opsaudit.tasks.audit import refused
from opsaudit.tasks.mail import store_unreachable


@dataclass(frozen=True)
class CirculationRun:
    """What one circulation needs: settings, config, the directory, the month and the clock."""

    settings: Settings
    config: Config
    directory: Directory
    month: Period
    now: datetime  # aware, in OPSAUDIT_TIMEZONE

    def __repr__(self) -> str:
        return f"CirculationRun({self.month.label}, now {self.now.isoformat(timespec='minutes')})"

    @cached_property
    def store(self) -> Engine:
        from opsaudit.audit import audit_store

        return audit_store(self.settings)


def prepare(settings: Settings, month: str | None, now: datetime | None, option: str = "--month") -> CirculationRun:
    """The month (default: the one before `now`) and the directory, checked before anything is
    written; a mistake in the month names `option` (the command's, or the flow's parameter)."""
    from opsaudit import periods
    from opsaudit.store.roles import load_directory

    config = settings.load_config()
    # A plain datetime: Prefect's scheduled times are pendulum's, whose arithmetic drops a zoneinfo zone.
    clock = datetime.fromtimestamp((now or datetime.now(settings.tz)).timestamp(), settings.tz)
    span = periods.given_month(month, option) if month else periods.previous("month", clock.replace(tzinfo=None))
    if span.end > clock.replace(tzinfo=None):
        # A month still under way, or to come, has no audits to tell everyone about yet.
        from opsaudit.errors import option_error
        from opsaudit.i18n.render import Message

        raise option_error(option, Message.of("validation.circulation.not_ended", month=span.label, end=span.end))
    return CirculationRun(settings, config, load_directory(settings, config), span, clock)


@task(cache_policy=NO_CACHE)
def prepare_circulation(month: str | None, now: datetime | None) -> CirculationRun | State:
    """Fix the clock (--now, else the scheduled time, else now) and the month it circulates; or the
    Failed state that says in one line what is wrong with the month or the settings (`refused`)."""
    scheduled = flow_run.get_scheduled_start_time() if now is None and flow_run.get_id() else None
    try:
        run = prepare(load_settings(), month, now or scheduled, option="month")
    except OpsauditError as exc:
        return refused(exc)
    get_run_logger().info(text("log.circulation.start", run.settings.language, month=run.month.label, now=run.now))
    return run


def circulate_month(run: CirculationRun, language: str | None = None) -> dict[str, Any]:
    """Write the month's circulation and enqueue its mail, once per month; who could not be told,
    in `language` (OPSAUDIT_LANGUAGE by default)."""
    with run.store.begin() as conn:
        result = circulate(conn, run.directory, run.config.recipients, run.month,
                           output_dir=run.settings.output_dir, language=run.settings.language,
                           zone=run.settings.tz, now=run.now)
    return result.as_json(language or run.settings.language)


@task(name="circulate", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=30,
      retry_condition_fn=store_unreachable)
def circulate_task(run: CirculationRun) -> dict[str, Any]:
    """The month's circulation, written and enqueued once."""
    result = circulate_month(run)
    logger = get_run_logger()
    if result["again"]:
        logger.info(text("log.circulation.again", run.settings.language, month=run.month.label))
    for note in result["unreachable"]:
        logger.warning(not_told(note, run.settings.language))
    return result
