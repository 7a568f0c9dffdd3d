"""The audit report of one run, written beside its results: a self-contained HTML file (inline CSS
and SVG charts), the same HTML as a PDF (WeasyPrint, Chinese in a CJK font), and the full list of
findings as CSV. Every word comes from the catalogue in the report's language."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from opsaudit.errors import InputError
from opsaudit.i18n import check_language, entity_reference, format_value, has_message, recommendation, text
from opsaudit.i18n.findings import deliverable_label, labelled
from opsaudit.i18n.render import Message
from opsaudit.reports import charts, fonts
from opsaudit.reports.findings_workbook import COLUMNS, row_values
from opsaudit.reports.report_data import Kpi, ReportData, load_report_data
from opsaudit.reports.review import ReviewStamp
from opsaudit.reports.special_purpose import special_purpose
from opsaudit.settings import Settings
from opsaudit.store.finding_views import SEVERITIES, FindingFilter, iter_findings
from opsaudit.store.runs import run_output_folder
from opsaudit.store.schema import audit_runs, check_results

TEMPLATES = Path(__file__).resolve().parent / "templates"
TREND_KPIS = 4


@dataclass(frozen=True)
class ReportFiles:
    """The report's files, beside each other in the run's output folder."""

    html: Path
    pdf: Path
    csv: Path
    json: Path


def write_report(store: sa.Engine, settings: Settings, run_id: str, language: str, folder: Path) -> ReportFiles:
    """Render run `run_id`'s report in `language` into `folder`: HTML, PDF and the findings CSV,
    beside the run's results.json (written from the store when the run's folder lacks it). The
    report states its review as the store has it."""
    with store.connect() as conn:
        return write_report_on(conn, settings, run_id, language, folder)


def write_report_on(conn: sa.Connection, settings: Settings, run_id: str, language: str, folder: Path, *,
                    review: ReviewStamp | None = None) -> ReportFiles:
    """write_report on an open connection; `review`, when given, is the review the report states
    (a decision not yet committed), instead of the store's."""
    from opsaudit.cli.findings import load_names, readable

    check_language(language)
    names = load_names(settings)
    config = settings.load_config()
    folder.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(folder / f"report.{language}.html", folder / f"report.{language}.pdf",
                        folder / f"findings.{language}.csv", folder / "results.json")
    data = load_report_data(conn, settings, config, run_id, language, staff_names=names.staff,
                            department_names=names.departments, review=review)
    rows = iter_findings(conn, FindingFilter(audit_run=run_id), sort="severity")
    _write_csv(files.csv, (readable(row, settings.tz, language, names) for row in rows), language)
    if not files.json.exists():
        _write_results(conn, run_id, files.json)
    html = render_html(data, language, files)
    files.html.write_text(html, encoding="utf-8")
    write_pdf(html, files.pdf)
    return files


def run_folder(store: sa.Engine, settings: Settings, prefix: str) -> tuple[Path, str]:
    """The output folder of the run whose id starts with `prefix`, where the flow writes it (see
    run_output_folder), and the run's full id."""
    with store.connect() as conn:
        found = conn.execute(sa.select(audit_runs.c.id, audit_runs.c.audit, audit_runs.c.kind, audit_runs.c.period)
                             .where(audit_runs.c.id.startswith(prefix)).limit(2)).all()
    if not found:
        raise InputError(Message.of("error.run.unknown", prefix=prefix, table=audit_runs.name))
    if len(found) > 1:
        raise InputError(Message.of("error.run.ambiguous", prefix=prefix))
    run_id, audit, kind, period = found[0]
    return run_output_folder(settings.output_dir, audit, kind, period, run_id), run_id


def render_html(data: ReportData, language: str, files: ReportFiles) -> str:
    """The report as one self-contained HTML document."""
    view = View(data, language)
    return _environment().get_template("report.html.j2").render(
        d=data, v=view, t=view.t, f=view.f, language=language, severities=SEVERITIES,
        charts=view.charts(), colours=charts.SEVERITY_COLOURS, files={"csv": files.csv.name, "json": files.json.name})


def write_pdf(html: str, path: Path) -> Path:
    """The HTML as a PDF; Chinese is set in the cut Noto Sans CJK SC when it is built (see
    reports.fonts), otherwise in the full font fontconfig finds."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    font_config = FontConfiguration()
    faces = fonts.face_rules()
    stylesheets = [CSS(string=faces, font_config=font_config)] if faces else []
    HTML(string=html).write_pdf(path, stylesheets=stylesheets, font_config=font_config)
    return path


@cache
def _environment() -> Environment:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    environment.filters["cap"] = sentence
    return environment


def sentence(words: str) -> str:
    """Words that stand alone in a cell or heading, capitalized (English enumerations are lowercase;
    Chinese has no case)."""
    return words[:1].upper() + words[1:]


def _write_csv(path: Path, findings: Iterable[dict[str, Any]], language: str) -> None:
    """Every finding of the run, the workbook's columns; a BOM so Excel reads the Chinese."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([text(key, language) for key, _, _ in COLUMNS])
        for finding in findings:
            writer.writerow(["" if value is None else value for value in row_values(finding, language)])


def _write_results(conn: sa.Connection, run_id: str, path: Path) -> None:
    """The run's results as JSON, for a run whose folder has no results.json (rendered elsewhere)."""
    run = conn.execute(sa.select(audit_runs).where(audit_runs.c.id == run_id)).mappings().one()
    results = conn.execute(sa.select(check_results).where(check_results.c.audit_run_id == run_id)
                           .order_by(check_results.c.id)).mappings()
    payload = {"audit_run_id": run_id, "audit": run["audit"], "kind": run["kind"], "period": run["period"],
               "summary": run["summary"],
               "results": [{key: row[key] for key in ("rule_id", "area", "entity_type", "entity_id", "department_id",
                                                       "outcome", "severity", "observed", "target", "population")}
                           for row in results]}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")


class View:
    """What the template asks of the data, in the report's language."""

    def __init__(self, data: ReportData, language: str) -> None:
        self.d, self.language = data, language

    def t(self, key: str, **values: Any) -> str:
        return text(key, self.language, **values)

    def f(self, value: Any, formatter: str) -> str:
        return format_value(value, formatter, self.language)

    def department(self, department_id: str | None) -> str:
        if not department_id:
            return self.t("report.analysis.no_department")
        return labelled(self.d.department_names.get(department_id), department_id, self.language)

    def departments(self, department_ids: Sequence[str]) -> list[str]:
        return [self.department(department_id) for department_id in department_ids]

    def special_purpose(self) -> str:
        """A special audit's reason, scope and who asked."""
        return special_purpose(self.d.run.parameters["special"], self.d.run.period, self.language,
                               department=self.department, person=self.person)

    def review(self) -> str:
        """The report's status as its review left it: a draft, approved (by whom and when), sent
        without review, or returned."""
        stamp = self.d.review
        if stamp.status == "approved" and stamp.reviewer is None:
            return self.t("report.meta.released")
        if stamp.status in ("approved", "rejected"):
            return self.t(f"report.meta.{stamp.status}", lead=self.person(stamp.reviewer), at=stamp.at)
        return self.t("report.meta.draft")

    def person(self, staff_id: str | None) -> str:
        if not staff_id:
            return self.t("report.problems.unassigned")
        return labelled(self.d.staff_names.get(staff_id), staff_id, self.language)

    def people(self, staff_ids: Sequence[str]) -> list[str]:
        return [self.person(staff_id) for staff_id in staff_ids]

    def entity(self, entity_type: str, entity_id: str) -> str:
        if entity_type == "company":
            return self.t("finding.subject.company")
        if entity_type == "department":
            return self.department(entity_id)
        if entity_type == "agent":
            return self.person(entity_id)
        if entity_type == "deliverable":
            return self.deliverable(entity_id)
        return entity_reference(entity_type, entity_id, self.language)

    def deliverable(self, entity_id: str) -> str:
        """`D03/monthly/2026-10` as a manager reads it: 客服三部（D03）：2026年10月的应交计划或报告."""
        return deliverable_label(entity_id, self.language, self.department(entity_id.split("/", 1)[0]))

    def figure(self, value: float | None, unit: str | None) -> str:
        """A rate as a percentage, a score as points."""
        return self.f(value, "score" if unit == "score" else "percent")

    def threshold(self, target: float | None, unit: str | None, op: str | None) -> str:
        if target is None:
            return self.t("report.method.record_rule")
        return self.t(f"dashboard.target.{op or 'at_least'}", value=self.figure(target, unit))

    def kpi_name(self, rule_id: str) -> str:
        key = f"dashboard.kpi.{rule_id}"
        return self.t(key) if has_message(key, self.language) else self.t(f"rule.{rule_id}.title")

    def kpi_matrix(self) -> tuple[list[Kpi], list[tuple[str, list[Kpi | None]]]]:
        """The KPI table: one column per figure (a sample result giving its target), one row for the
        whole company and one per department."""
        columns: dict[str, Kpi] = {}
        rows: dict[tuple[bool, str], dict[str, Kpi]] = {}
        for kpi in self.d.kpis:
            columns.setdefault(kpi.rule_id, kpi)
            rows.setdefault((kpi.entity_type != "company", kpi.entity_id), {})[kpi.rule_id] = kpi
        return list(columns.values()), [
            (self.entity("department" if department else "company", entity_id),
             [cells.get(rule_id) for rule_id in columns]) for (department, entity_id), cells in sorted(rows.items())]

    def kpi_status(self, kpi: Kpi) -> str:
        if kpi.outcome == "failed" and kpi.severity:
            return self.f(kpi.severity, "enum.severity")
        return self.f(kpi.outcome, "enum.outcome")

    def gap(self, observed: float | None, target: float | None, unit: str | None) -> str:
        """How far a figure is from its target: in points of score, or in percentage points."""
        if observed is None or target is None:
            return self.f(None, "text")
        return self.t("report.problems.gap_score" if unit == "score" else "report.problems.gap_points",
                      value=abs(target - observed))

    def recommendation(self, rule_id: str) -> str:
        return recommendation(rule_id, self.language)

    def handling(self, severity: str) -> str:
        deadlines = self.d.deadlines
        return self.t(f"handling.{severity}", deadline=deadlines[severity], plan_deadline=deadlines["major_plan"])

    def outcomes(self, counts: Mapping[str, int]) -> str:
        return self.t("report.method.outcomes", **{name: counts.get(name, 0) for name in
                                                   ("passed", "warning", "failed", "insufficient_data")})

    def areas(self) -> list[str]:
        return [self.f(area, "enum.area") for area in dict.fromkeys(rule.area for rule in self.d.rules)]

    def table(self, name: str) -> str:
        key = f"contract.table.{name}"
        return self.t(key) if has_message(key, self.language) else name

    def table_name(self, name: str) -> str:
        """工单表（tickets）: the table's name with its name in the database, once if they are the same."""
        label = self.table(name)
        return label if label == name else self.t("label.named", name=label, id=name)

    def quality_item(self, kpi: Kpi) -> str:
        table, _, column = kpi.entity_id.partition(".")
        label = f"contract.column.{table}.{column}"
        if column == "*":  # the table as a whole: freshness, a missing or empty table
            where = self.t("contract.whole_table", table=self.table(table))
        else:
            where = self.t("contract.qualified", table=self.table(table),
                           column=self.t(label) if has_message(label, self.language) else column)
        return self.t("report.method.quality_line", column=where, rule=self.t(f"rule.{kpi.rule_id}.title"))

    def detail_total(self, severity: str) -> int:
        """Findings of `severity` that are not an agent's (those are in the agents' table)."""
        return self.d.severity_counts.get(severity, 0) - self.d.agent_severities.get(severity, 0)

    def top_concentration(self) -> dict[str, Any] | None:
        """The department and the rule with the most findings, for the summary."""
        if not self.d.by_department or not self.d.by_rule:
            return None
        department, counts = self.d.by_department[0]
        rule_id, rule_count = self.d.by_rule[0]
        return {"department": self.department(department), "department_count": sum(counts.values()),
                "rule": self.t(f"rule.{rule_id}.title"), "rule_count": rule_count}

    def pair(self, label: str, value: str) -> str:
        """`责任部门：客服一部` / `Department: Service 1`."""
        return self.t("report.pair", label=label, value=value)

    def earlier_total(self) -> int:
        return sum(sum(counts.values()) for counts in self.d.earlier.values())

    def earlier_open(self) -> tuple[int, int]:
        """(not closed, overdue) findings of earlier periods."""
        earlier = self.d.earlier
        overdue = sum(earlier["overdue"].values())
        return sum(earlier["open"].values()) + overdue, overdue

    def charts(self) -> dict[str, Any]:
        """The trend and concentration charts as inline SVG."""
        count = self._count
        trend = self.d.trend
        periods = [self.f(point.period, "period") for point in trend]
        found: dict[str, Markup | list[Markup]] = {"kpis": []}
        if len(trend) > 1:
            found["findings"] = charts.stacked_bars(
                periods, [[(s, p.findings.get(s, 0)) for s in reversed(SEVERITIES)] for p in trend],
                self.t("report.chart.findings"), count)
            for kpi in self._trend_kpis():
                rule_id = kpi.rule_id
                values = [p.kpis.get(rule_id) for p in trend]
                found["kpis"].append((self.t("report.analysis.trend_kpi", kpi=self.kpi_name(rule_id)), charts.line(
                    periods, values, [self.figure(v, kpi.unit) for v in values], kpi.target,
                    self.figure(kpi.target, kpi.unit), self.t("report.chart.kpi", kpi=self.kpi_name(rule_id)))))
        if self.d.by_department:
            found["departments"] = charts.horizontal_bars(
                [(self.department(d), [(s, c.get(s, 0)) for s in SEVERITIES]) for d, c in self.d.by_department[:12]],
                self.t("report.chart.departments"), count)
        return found

    def _trend_kpis(self) -> list[Kpi]:
        """The company's figures worth a chart: measured this period, problems and warnings first."""
        order = {"failed": 0, "warning": 1}
        measured = [k for k in self.d.kpis if k.entity_type == "company" and k.observed is not None]
        return sorted(measured, key=lambda k: (order.get(k.outcome, 2), k.rule_id))[:TREND_KPIS]

    def _count(self, value: int) -> str:
        return self.f(value, "count")
