"""The audit report as a Prefect task: written beside the run's results once its findings are stored."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsaudit.audit import AuditContext
from opsaudit.i18n import text
from opsaudit.store.runs import RunInfo
from opsaudit.tasks.audit import IO_RETRIES


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def write_reports(context: AuditContext, run: RunInfo) -> list[str]:
    """The run's report under the run's output folder, in OPSAUDIT_LANGUAGE and in each language
    its configured report recipients read: HTML, PDF and the findings CSV per language, then the
    results JSON, as paths."""
    from opsaudit.reports.recipients import report_languages
    from opsaudit.reports.render import write_report

    paths: list[str] = []
    logger = get_run_logger()
    for language in report_languages(context.config.recipients, context.audit, context.settings.language):
        files = write_report(context.store, context.settings, run.id, language, context.output_folder(run.id))
        written = [str(files.html), str(files.pdf), str(files.csv)]
        logger.info(text("log.report.written", context.settings.language,
                         language=text(f"review.language.{language}", context.settings.language), files=written))
        paths += written
    return [*paths, str(files.json)]
