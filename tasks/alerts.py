"""The Prefect task that alerts the managers of a run's major problems at once (seed 000 §6.2)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsaudit.audit import AuditContext
from opsaudit.errors import OpsauditError
from opsaudit.reports.alerts import alert_major_findings
from opsaudit.reports.delivery import deliver_pending
from opsaudit.reports.recipients import Directory, not_told
from opsaudit.store.runs import RunInfo
from opsaudit.store.times import utcnow
from opsaudit.tasks.audit import IO_RETRIES


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def alert_major_problems(context: AuditContext, run: RunInfo) -> dict[str, Any]:
    """One alert per new major finding of the run, enqueued and delivered now: never after review."""
    directory = Directory.load(context.source, context.settings)
    with context.store.begin() as conn:
        summary = alert_major_findings(conn, directory, context.config.recipients, run.id,
                                       deadlines=context.config.thresholds.deadlines,
                                       language=context.settings.language, zone=context.settings.tz, now=utcnow(),
                                       settings=context.settings)
    logger = get_run_logger()
    language = context.settings.language
    for note in summary.notes:
        logger.warning(not_told(note, language))
    if not summary.messages:
        return summary.as_json(language)
    logger.info("%d major problems alerted in %d messages", len(summary.findings), len(summary.messages))
    return {**summary.as_json(language), "mail": deliver_now(context)}


def deliver_now(context: AuditContext) -> dict[str, Any]:
    """Send the outbox now. A mail setting that cannot work is logged, not raised: the audit itself
    is done, and its mail waits in the outbox for `opsaudit outbox retry` once the setting is fixed."""
    logger = get_run_logger()
    try:
        report = deliver_pending(context.store, context.settings)
    except OpsauditError as exc:
        logger.error("mail not sent, it waits in the outbox: %s", exc)
        return {"attempted": False, "error": str(exc)}
    if not report.attempted:
        logger.info("OPSAUDIT_SMTP_HOST is not set: %d messages wait in the outbox", len(report.waiting))
    for mail in report.retrying + report.failed:
        logger.warning("outbox #%d (%s): %s", mail.id, mail.status, mail.last_error)
    return report.summary()
