"""The dashboard of an audit run: Prefect artifacts in the reader's language (OPSAUDIT_LANGUAGE).

- a Markdown summary: the audit, its period and kind (with a special audit's reason and scope, or
  a spot check's draw and how to re-perform it), the problems by severity, and the KPIs against
  their targets with their early warnings;
- a table of the findings, most severe first, capped at FINDINGS_SHOWN rows with the total stated;
- a link to the audit report's page on the web once the reporting step has written one, until then to
  the run's findings there (OPSAUDIT_WEB_URL): a page people can open, not a path on the server.

Each artifact is keyed by its audit (`cs-monthly-summary`), so the Artifacts page shows the latest
of each audit with its history; each run shows its own on its page. One task per artifact: a
retry never publishes one twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from opsaudit.audit import AuditContext
from opsaudit.checks.results import CheckResult, Outcome, ResultSet, Severity
from opsaudit.i18n import format_value, render_finding, text
from opsaudit.spot_check import reperform_command
from opsaudit.store.findings import is_finding
from opsaudit.tasks.audit import IO_RETRIES
from opsaudit.web.links import report_url, run_findings_url

FINDINGS_SHOWN = 200
KPIS_SHOWN = 60
SEVERITIES = (Severity.MAJOR, Severity.IMPORTANT, Severity.GENERAL)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def artifact_key(audit: str, name: str) -> str:
    """A key Prefect accepts: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", f"{audit}-{name}".lower()).strip("-")


def escaped(value: Any) -> str:
    """Text from people or data shown as it is, not as Markdown, on one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def sentence(words: str) -> str:
    """Words that start a sentence or a cell, capitalized (English catalogue entries are lowercase)."""
    return words[:1].upper() + words[1:]


def figure(value: float | None, unit: str | None, language: str) -> str:
    """An observed value or target as people read it: a percentage, or a score."""
    return format_value(value, "score" if unit == "score" else "percent", language)


def target_text(result: CheckResult, language: str) -> str:
    """`不低于95.0%` / `at most 110.0%`."""
    value = figure(result.target, result.facts.get("unit"), language)
    return text(f"dashboard.target.{result.facts.get('op') or 'at_least'}", language, value=value)


def subject(result: CheckResult, language: str) -> str:
    """Who a result is about: the whole company, a department by name, or the audited item's id."""
    if result.entity_type == "company":
        return text("finding.subject.company", language)
    name = result.facts.get("department_name") if result.entity_type == "department" else None
    return text("label.named", language, name=name, id=result.entity_id) if name else result.entity_id


def status(result: CheckResult, language: str) -> str:
    if result.outcome is Outcome.FAILED and result.severity is not None:
        return sentence(text(f"enum.severity.{result.severity.value}", language))
    label = sentence(text(f"enum.outcome.{result.outcome.value}", language))
    return f"⚠ {label}" if result.outcome is Outcome.WARNING else label


def measured(results: Iterable[CheckResult]) -> list[CheckResult]:
    """The KPIs of the company and of each department against their targets."""
    return [r for r in results if r.entity_type in ("company", "department") and r.target is not None
            and r.area != "data_quality" and not r.facts.get("rollup")]


def kpi_results(results: Iterable[CheckResult]) -> list[CheckResult]:
    """The KPIs shown: the company's first, then failures and early warnings, then the rest, at most
    KPIS_SHOWN; grouped by rule."""
    kpis = measured(results)
    order = {rule_id: index for index, rule_id in enumerate(dict.fromkeys(r.rule_id for r in kpis))}

    def priority(result: CheckResult) -> int:
        if result.entity_type == "company":
            return 0
        return 1 if result.outcome in (Outcome.FAILED, Outcome.WARNING) else 2

    chosen = sorted(kpis, key=lambda r: (priority(r), order[r.rule_id], r.entity_id))[:KPIS_SHOWN]
    return sorted(chosen, key=lambda r: (order[r.rule_id], r.entity_type != "company", r.entity_id))


def summary_markdown(context: AuditContext, results: ResultSet, summary: Mapping[str, Any], language: str) -> str:
    """The run's summary page: what was audited, the problems by severity, the KPIs against targets."""
    title = text("dashboard.summary.title", language, audit=context.audit, period=context.period.label)
    lines = [f"# {sentence(title)}", ""]
    facts = [(text("dashboard.summary.kind", language), sentence(text(f"enum.audit_kind.{context.kind}", language))),
             (text("dashboard.summary.period", language), format_value(context.period.label, "period", language)),
             (text("dashboard.summary.run", language), f"`{summary['audit_run_id']}`")]
    facts += _scope_facts(summary, language)
    lines += ["- " + text("dashboard.summary.fact", language, name=f"**{name}**", value=value)
              for name, value in facts] + [""]
    problems = summary["problems"]
    lines += [f"## {text('dashboard.summary.problems', language)}", ""]
    if problems:
        lines += [f"| {text('dashboard.summary.severity', language)} | {text('dashboard.summary.count', language)} |",
                  "|---|---:|"]
        lines += [f"| {sentence(text(f'enum.severity.{s.value}', language))} | "
                  f"{format_value(problems.get(s.value, 0), 'count', language)} |" for s in SEVERITIES]
        lines.append(f"| **{text('dashboard.summary.total', language)}** | "
                     f"**{format_value(sum(problems.values()), 'count', language)}** |")
    else:
        lines.append(text("dashboard.summary.no_problems", language))
    outcomes = summary["outcomes"]
    lines += ["", text("dashboard.summary.outcomes", language, passed=outcomes.get("passed", 0),
                       warning=outcomes.get("warning", 0), failed=outcomes.get("failed", 0),
                       insufficient=outcomes.get("insufficient_data", 0)), ""]
    lines += _kpi_table(results, language)
    return "\n".join(lines) + "\n"


def _scope_facts(summary: Mapping[str, Any], language: str) -> list[tuple[str, str]]:
    """A special audit's reason and scope, or a spot check's draw and how to re-perform it."""
    if "special" in summary:
        special = summary["special"]
        areas = [text(f"enum.area.{area}", language) for area in special["areas"]]
        return [(text("dashboard.summary.reason", language), escaped(special["reason"])),
                (text("dashboard.summary.areas", language), format_value(areas, "list", language)),
                (text("dashboard.summary.departments", language),
                 escaped(format_value(special["departments"], "list", language)))]
    if "draw" in summary:
        draw = summary["draw"]
        drawn = text("dashboard.summary.drawn", language, seed=draw["seed"], area=draw["area"],
                     department=escaped(draw["department_id"]), population=draw["population"],
                     records=draw["records"], size=draw["sample_size"])
        return [(text("dashboard.summary.draw", language), drawn),
                (text("dashboard.summary.reperform", language), f"`{reperform_command(draw['seed'])}`")]
    return []


def _kpi_table(results: ResultSet, language: str) -> list[str]:
    shown = kpi_results(results)
    if not shown:
        return []
    heads = [text(f"dashboard.summary.{name}", language) for name in ("kpi", "entity", "observed", "target", "status")]
    lines = [f"## {text('dashboard.summary.kpis', language)}", "", "| " + " | ".join(heads) + " |",
             "|---|---|---:|---:|---|"]
    for result in shown:
        lines.append(f"| {text(f'dashboard.kpi.{result.rule_id}', language)} | {escaped(subject(result, language))} | "
                     f"{figure(result.observed, result.facts.get('unit'), language)} | "
                     f"{target_text(result, language)} | {status(result, language)} |")
    kpis = measured(results)
    warnings = sum(r.outcome is Outcome.WARNING for r in kpis)
    lines.append("")
    if warnings:
        lines.append(text("dashboard.summary.warnings", language, count=warnings))
    if len(kpis) > len(shown):
        lines.append(text("dashboard.summary.more_kpis", language, count=len(kpis) - len(shown)))
    return lines


def findings_rows(results: Iterable[CheckResult], language: str, limit: int = FINDINGS_SHOWN) \
        -> tuple[list[dict[str, str]], int]:
    """The findings most severe first (then by rule and item), at most `limit`, and how many there are."""
    found = sorted((r for r in results if is_finding(r)),
                   key=lambda r: (-Severity(r.severity).rank, r.rule_id, r.entity_type, r.entity_id))
    columns = {name: text(f"field.{name}", language)
               for name in ("severity", "title", "entity", "department", "observed", "target", "owner")}
    rows = []
    for result in found[:limit]:
        title = render_finding(result.rule_id, result.entity_type, {**result.facts, "entity_id": result.entity_id},
                               language).title
        unit = result.facts.get("unit")
        rows.append({
            columns["severity"]: sentence(text(f"enum.severity.{Severity(result.severity).value}", language)),
            columns["title"]: title, columns["entity"]: subject(result, language),
            columns["department"]: result.department_id or "—",
            columns["observed"]: figure(result.observed, unit, language) if result.target is not None else "—",
            columns["target"]: target_text(result, language) if result.target is not None and unit else "—",
            columns["owner"]: result.owner_id or "—",
        })
    return rows, len(found)


def report_file(folder: Path, language: str) -> Path | None:
    """The audit report the reporting step wrote in the run's folder (HTML, then PDF; the reader's
    language first), if any."""
    for pattern in ("*.html", "*.pdf"):
        found = sorted(folder.glob(pattern), key=lambda path: (language not in path.name, path.name))
        if found:
            return found[0]
    return None


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def publish_summary(context: AuditContext, results: ResultSet, summary: dict[str, Any]) -> None:
    """The run's summary page."""
    language = context.settings.language
    create_markdown_artifact(markdown=summary_markdown(context, results, summary, language),
                             key=artifact_key(context.audit, "summary"),
                             description=sentence(text("dashboard.summary.title", language, audit=context.audit,
                                                       period=context.period.label)))


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def publish_findings(context: AuditContext, results: ResultSet) -> None:
    """The findings table, most severe first, capped."""
    language = context.settings.language
    rows, total = findings_rows(results, language)
    values = {"audit": context.audit, "period": context.period.label}
    description = text("dashboard.findings.description", language, shown=len(rows), total=total, **values) \
        if total else text("dashboard.findings.none", language, **values)
    create_table_artifact(table=rows, key=artifact_key(context.audit, "findings"), description=description)


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def publish_report_link(context: AuditContext, output: Path, run_id: str) -> None:
    """A link to the run's report on the web (OPSAUDIT_WEB_URL), or to its findings there until a
    report exists: a page anyone signed in can open, not a path on the server."""
    settings, language = context.settings, context.settings.language
    report = report_file(output.parent, language)   # the run's folder, beside its results
    values = {"audit": context.audit, "period": context.period.label}
    label = text("dashboard.report.report", language, **values) if report \
        else text("dashboard.report.results", language, **values)
    link = report_url(settings, run_id) if report else run_findings_url(settings, run_id)
    create_link_artifact(link=link, link_text=label, key=artifact_key(context.audit, "report"), description=label)


def publish_artifacts(context: AuditContext, results: ResultSet, summary: dict[str, Any]) -> None:
    """Every artifact of the run; must run inside a flow."""
    publish_summary(context, results, summary)
    publish_findings(context, results)
    publish_report_link(context, Path(summary["output"]), summary["audit_run_id"])
