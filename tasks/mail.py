"""The Prefect task that delivers the outbox: a thin wrapper, retried only when the store's I/O fails.

SMTP failures are not task failures: each is recorded on its message, which backs off and
waits in the outbox for the next run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsaudit.db import create_engine
from opsaudit.i18n import text
from opsaudit.reports.delivery import DeliveryReport, deliver_pending
from opsaudit.settings import load_settings
from opsaudit.store.migrate import require_current


def store_unreachable(_task, _task_run, state) -> bool:
    """Retry when the store could not be reached or dropped the connection; not on a defect or a bad setting."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, (OSError, sa.exc.OperationalError, sa.exc.InterfaceError))


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=30, retry_condition_fn=store_unreachable)
def deliver_outbox(now: datetime | None = None) -> dict[str, Any]:
    """Send the pending mail that is due, with the OPSAUDIT_SMTP_* settings; without a host, nothing."""
    settings = load_settings()
    engine = create_engine(settings.store, purpose="store")
    try:
        require_current(engine)
        report = deliver_pending(engine, settings, now=now)
    finally:
        engine.dispose()
    log_delivery(report, settings.language, counts=True)
    return report.summary()


def log_delivery(report: DeliveryReport, language: str, *, counts: bool) -> None:
    """What the delivery did, in the run's log: mail waiting for a host; with `counts`, how many
    went; each message to retry or failed, with its error."""
    logger = get_run_logger()
    if not report.attempted:
        logger.info(text("log.mail.no_host", language, setting="OPSAUDIT_SMTP_HOST", count=len(report.waiting)))
    elif counts:
        logger.info(text("log.mail.delivered", language, server=report.server, sent=len(report.sent),
                         retrying=len(report.retrying), failed=len(report.failed), waiting=len(report.waiting)))
    for mail in report.retrying + report.failed:
        logger.warning(text("log.mail.problem", language, id=mail.id, status=mail.status, error=mail.last_error))
