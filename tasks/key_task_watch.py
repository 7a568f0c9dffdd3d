"""Prefect tasks of the key-task watch: thin wrappers around opsaudit.key_tasks, retried only when
the store could not be reached; each log line a sentence from the catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from opsaudit.i18n import text
from opsaudit.key_tasks import WatchRun, prepare_run
from opsaudit.reports.recipients import not_told
from opsaudit.settings import load_settings
from opsaudit.tasks.mail import store_unreachable


@task(cache_policy=NO_CACHE)
def prepare_watch(now: datetime | None) -> WatchRun:
    """Fix the clock (--now, else the scheduled time, else now) and check the tasks table, the
    directory and the store before anything is written."""
    scheduled = flow_run.get_scheduled_start_time() if now is None and flow_run.get_id() else None
    run = prepare_run(load_settings(), now or scheduled)
    language = run.settings.language
    get_run_logger().info(text("key_tasks.log.start", language, now=run.now,
                               priorities=[text(f"enum.priority.{p}", language) for p in run.policy.priorities],
                               days=run.policy.due_soon_days))
    return run


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=30, retry_condition_fn=store_unreachable)
def warn_key_tasks(run: WatchRun) -> dict[str, Any]:
    """Each new warning, once: claimed, then mailed to the owner and the department head."""
    language = run.settings.language
    summary = run.run().as_json(language)
    logger = get_run_logger()
    logger.info(text("key_tasks.log.warned", language, **summary))
    for note in summary["unreachable"]:
        logger.warning(not_told(note, language))
    return summary
