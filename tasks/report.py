"""The audit report as a Prefect task: written beside the run's results once its findings are stored."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsaudit.audit import AuditContext
from opsaudit.store.runs import RunInfo
from opsaudit.tasks.audit import IO_RETRIES


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def write_reports(context: AuditContext, run: RunInfo) -> list[str]:
    """The run's report in OPSAUDIT_LANGUAGE under the run's output folder: HTML, PDF, the findings
    CSV and the results JSON, as paths."""
    from opsaudit.reports.render import write_report

    language = context.settings.language
    files = write_report(context.store, context.settings, run.id, language, context.output_folder)
    paths = [str(files.html), str(files.pdf), str(files.csv), str(files.json)]
    get_run_logger().info("report (%s): %s", language, ", ".join(paths))
    return paths
