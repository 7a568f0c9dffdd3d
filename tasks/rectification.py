"""Prefect tasks of the rectification tracking: thin wrappers around opsaudit.tracking and
opsaudit.progress, retried only when the store could not be reached."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from opsaudit.errors import OpsauditError
from opsaudit.i18n import text
from opsaudit.progress import send_progress_report
from opsaudit.reports.recipients import not_told
from opsaudit.settings import load_settings
from opsaudit.tasks.audit import refused
from opsaudit.tasks.mail import store_unreachable
from opsaudit.tracking import TrackingRun, prepare_run, track


@task(cache_policy=NO_CACHE)
def prepare_tracking(now: datetime | None) -> TrackingRun | State:
    """Fix the clock (--now, else the scheduled time, else now) and check the store and the
    directory before anything is written; or the Failed state that says in one line what is unfit."""
    scheduled = flow_run.get_scheduled_start_time() if now is None and flow_run.get_id() else None
    try:
        run = prepare_run(load_settings(), now or scheduled)
    except OpsauditError as exc:
        return refused(exc)
    get_run_logger().info(text("log.rectification.start", run.settings.language, now=run.now))
    return run


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=30, retry_condition_fn=store_unreachable)
def remind_and_escalate(run: TrackingRun) -> dict[str, Any]:
    """Every reminder and escalation step due, each once: an event and a mail."""
    with run.store.begin() as conn:
        summary = track(conn, run.directory, run.policy, now=run.now, zone=run.settings.tz,
                        language=run.settings.language, settings=run.settings)
    logger = get_run_logger()
    logger.info(text("log.rectification.tracked", run.settings.language, reminded=summary.reminded,
                     escalated=summary.escalated, messages=summary.messages))
    for note in summary.unreachable:
        logger.warning(not_told(note, run.settings.language))
    return summary.as_json(run.settings.language)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=30, retry_condition_fn=store_unreachable)
def report_progress(run: TrackingRun) -> str | None:
    """The week's progress report, once a week from the configured weekday; the week it was sent for."""
    with run.store.begin() as conn:
        sent = send_progress_report(conn, run.directory, run.policy.progress_report_weekday, now=run.now,
                                    zone=run.settings.tz, language=run.settings.language)
    logger = get_run_logger()
    for note in sent.notes:
        logger.warning(not_told(note, run.settings.language))
    if sent.week:
        logger.info(text("log.rectification.progress", run.settings.language, week=sent.week))
    return sent.week
