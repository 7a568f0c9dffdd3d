"""Prefect tasks of the rectification tracking: thin wrappers around opsaudit.tracking and
opsaudit.progress, retried only when the store could not be reached."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from opsaudit.progress import send_progress_report
from opsaudit.reports.recipients import not_told
from opsaudit.settings import load_settings
from opsaudit.tasks.mail import store_unreachable
from opsaudit.tracking import TrackingRun, prepare_run, track


@task(cache_policy=NO_CACHE)
def prepare_tracking(now: datetime | None) -> TrackingRun:
    """Fix the clock (--now, else the scheduled time, else now) and check the store and the
    directory before anything is written."""
    scheduled = flow_run.get_scheduled_start_time() if now is None and flow_run.get_id() else None
    run = prepare_run(load_settings(), now or scheduled)
    get_run_logger().info("rectification tracking at %s", run.now.isoformat(timespec="minutes"))
    return run


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=30, retry_condition_fn=store_unreachable)
def remind_and_escalate(run: TrackingRun) -> dict[str, Any]:
    """Every reminder and escalation step due, each once: an event and a mail."""
    with run.store.begin() as conn:
        summary = track(conn, run.directory, run.policy, now=run.now, zone=run.settings.tz,
                        language=run.settings.language, settings=run.settings)
    logger = get_run_logger()
    logger.info("%d reminded, %d escalated, %d messages", summary.reminded, summary.escalated, summary.messages)
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
        logger.info("progress report of %s enqueued", sent.week)
    return sent.week
