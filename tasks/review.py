"""Prefect tasks that hand a run's report to the review gate (seed 000 §5.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsaudit.audit import AuditContext
from opsaudit.i18n import LANGUAGES, text
from opsaudit.reports.recipients import Directory, not_told
from opsaudit.reports.review import Gate, submit
from opsaudit.store.runs import RunInfo
from opsaudit.store.times import utcnow
from opsaudit.tasks.alerts import deliver_now
from opsaudit.tasks.audit import IO_RETRIES


def by_language(files: list[str], default: str) -> dict[str, list[str]]:
    """The files of each report language (`report.en.pdf` is English); a file without a language
    (results.json) goes with every one; no language-specific file at all: OPSAUDIT_LANGUAGE's."""
    tagged: dict[str, list[str]] = {}
    shared = []
    for name in files:
        tag = Path(name).with_suffix("").suffix.lstrip(".")
        if tag in LANGUAGES:
            tagged.setdefault(tag, []).append(name)
        else:
            shared.append(name)
    return {language: [*own, *shared] for language, own in (tagged or {default: []}).items()}


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def submit_report(context: AuditContext, run: RunInfo, files: list[str]) -> dict[str, Any]:
    """Record the report files of each language for review (or, with OPSAUDIT_REPORT_REVIEW=off,
    release them), and deliver the mail that makes now."""
    gate = Gate(Directory.load(context.source, context.settings), context.config.recipients, context.settings)
    outcomes = {}
    logger = get_run_logger()
    with context.store.begin() as conn:
        for language, own in by_language(files, context.settings.language).items():
            outcome = submit(conn, gate, run.id, language, own, now=utcnow())
            outcomes[language] = {"status": outcome.status, "messages": list(outcome.messages),
                                  "recipients": [address.email for address in outcome.recipients]}
            for note in outcome.notes:
                logger.warning(not_told(note, context.settings.language))
    logger.info(submitted_line(outcomes, context.settings.language))
    return {"reports": outcomes, "mail": deliver_now(context)}


def submitted_line(outcomes: dict[str, dict[str, Any]], language: str) -> str:
    """稽查报告已提交：中文：待审核: each report language and where its review stands, for the log."""
    return text("log.report_submitted", language, reports=[
        text("log.report_language", language, language=text(f"review.language.{report}", language),
             status=outcome["status"]) for report, outcome in outcomes.items()])
