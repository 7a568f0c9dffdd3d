"""The Prefect task that alerts the managers of a run's major problems at once (seed 000 §6.2)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsaudit.audit import AuditContext
from opsaudit.errors import OpsauditError
from opsaudit.i18n import text
from opsaudit.reports.alerts import alert_major_findings
from opsaudit.reports.delivery import deliver_pending
from opsaudit.reports.recipients import Directory, not_told
from opsaudit.store.runs import RunInfo
from opsaudit.store.times import utcnow
from opsaudit.tasks.audit import IO_RETRIES
from opsaudit.tasks.mail import log_delivery


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
    logger.info(text("log.alerts.sent", language, findings=len(summary.findings), messages=len(summary.messages)))
    return {**summary.as_json(language), "mail": deliver_now(context)}


def deliver_now(context: AuditContext) -> dict[str, Any]:
    """Send the outbox now. A mail setting that cannot work is logged, not raised: the audit itself
    is done, and its mail waits in the outbox for `opsaudit outbox retry` once the setting is fixed."""
    language = context.settings.language
    try:
        report = deliver_pending(context.store, context.settings)
    except OpsauditError as exc:
        get_run_logger().error(text("log.mail.not_sent", language, error=exc.text(language)))
        return {"attempted": False, "error": str(exc)}
    log_delivery(report, language, counts=False)
    return report.summary()
