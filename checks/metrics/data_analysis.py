"""Data-analysis formulas (audit-rules.md section 4, data_analysis), including the re-computation
of the figures that analysis reports state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.expression import ColumnElement

from opsaudit.checks.metrics import MetricContext, Records, in_period, metric
from opsaudit.checks.metrics.customer_service import first_response_in_sla, rated, satisfied
from opsaudit.checks.spec import load_area
from opsaudit.checks.sqlfuncs import blank, count_if, seconds_between
from opsaudit.periods import Period, parse_period

DAY = 86400.0
RATE_METRICS = ("satisfaction_rate", "first_response_rate", "task_on_time_rate")
RECOMPUTABLE = ("ticket_count", "complaint_count", "task_count", *RATE_METRICS)
COMPANY = "company"


def _report_rows(r: FromClause) -> list[Any]:
    return [r.c.report_id.label("entity_id"), r.c.department_id.label("department_id"),
            r.c.author_id.label("owner_id")]


def _count(r: FromClause, where: Any) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(r).where(where)


def _scoped(ctx: MetricContext, r: FromClause) -> ColumnElement[bool]:
    """Reports of the audit's departments (and sample)."""
    return ctx.in_scope(r.c.department_id, analysis_reports=r.c.report_id)


@metric("report_late")
def report_late(ctx: MetricContext) -> Records:
    r = ctx.source.table("analysis_reports")
    end = sa.literal(ctx.period.end, sa.DateTime)
    due = sa.and_(in_period(r.c.due_at, ctx.period), _scoped(ctx, r))
    days_late = seconds_between(r.c.due_at, sa.func.coalesce(r.c.submitted_at, end)) / DAY
    query = (sa.select(*_report_rows(r), r.c.kind, r.c.period.label("report_period"), r.c.due_at,
                       r.c.submitted_at, days_late.label("days_late"))
             .where(due, sa.or_(r.c.submitted_at > r.c.due_at, r.c.submitted_at.is_(None)))
             .order_by(r.c.report_id))
    return Records(query=query, population=_count(r, due), tables=("analysis_reports",))


@metric("report_incomplete")
def report_incomplete(ctx: MetricContext) -> Records:
    r = ctx.source.table("analysis_reports")
    submitted = sa.and_(in_period(r.c.submitted_at, ctx.period), _scoped(ctx, r))
    missing = sa.case((blank(r.c.methods), "no_methods"), (blank(r.c.recommendations), "no_recommendations"),
                      else_=None)
    query = (sa.select(*_report_rows(r), r.c.kind, missing.label("reason"))
             .where(submitted, missing.is_not(None)).order_by(r.c.report_id))
    return Records(query=query, population=_count(r, submitted), tables=("analysis_reports",))


@metric("report_unreviewed")
def report_unreviewed(ctx: MetricContext) -> Records:
    r = ctx.source.table("analysis_reports")
    submitted = sa.and_(in_period(r.c.submitted_at, ctx.period), _scoped(ctx, r))
    query = (sa.select(*_report_rows(r), r.c.kind).where(submitted, blank(r.c.reviewed_by))
             .order_by(r.c.report_id))
    return Records(query=query, population=_count(r, submitted), tables=("analysis_reports",))


def sla_params(ctx: MetricContext) -> dict[str, Any]:
    """The channel SLAs of cs.first_response_rate, as the company set them, even when it turned the rule off."""
    rule = ctx.rules.get("cs.first_response_rate")
    if rule is not None:
        return rule.params
    return load_area("customer_service").rules["cs.first_response_rate"].params


def _ticket_figures(ctx: MetricContext, period: Period, conn: Connection) -> dict[str, dict[str, float]]:
    """Per department: the ticket figures reports may state, recomputed over `period`."""
    t = ctx.source.table("tickets")
    in_sla = first_response_in_sla(t, sla_params(ctx))
    query = (sa.select(t.c.department_id, sa.func.count().label("ticket_count"),
                       count_if(t.c.kind == "complaint").label("complaint_count"),
                       count_if(rated(t)).label("rated"), count_if(sa.and_(rated(t), satisfied(t))).label("satisfied"),
                       count_if(in_sla).label("in_sla"))
             .where(in_period(t.c.opened_at, period)).group_by(t.c.department_id))
    return {row.department_id: dict(row._mapping) for row in conn.execute(query)}


def _task_figures(ctx: MetricContext, period: Period, conn: Connection) -> dict[str, dict[str, float]]:
    t = ctx.source.table("tasks")
    on_time = sa.and_(t.c.completed_at.is_not(None), t.c.completed_at <= t.c.due_at)
    query = (sa.select(t.c.department_id, sa.func.count().label("task_count"),
                       count_if(on_time).label("on_time"))
             .where(in_period(t.c.due_at, period), t.c.status != "cancelled").group_by(t.c.department_id))
    return {row.department_id: dict(row._mapping) for row in conn.execute(query)}


def _value(metric_name: str, figures: dict[str, float]) -> float | None:
    """A stated metric's true value from summed figures; None when it has no population."""
    ratios = {"satisfaction_rate": ("satisfied", "rated"), "first_response_rate": ("in_sla", "ticket_count"),
              "task_on_time_rate": ("on_time", "task_count")}
    if metric_name in ratios:
        num, den = ratios[metric_name]
        return figures.get(num, 0) / figures[den] if figures.get(den) else None
    return float(figures.get(metric_name, 0))


def _parses(label: str) -> bool:
    try:
        parse_period(label)
    except ValueError:
        return False
    return True


def recompute(ctx: MetricContext, conn: Connection, periods: Iterable[str]) -> dict[tuple[str, str], dict[str, float]]:
    """(period, department or 'company') -> figures, two grouped queries per period."""
    figures: dict[tuple[str, str], dict[str, float]] = {}
    for label in sorted(set(periods)):
        try:
            period = parse_period(label)
        except ValueError:
            continue  # an unparseable period is reported on the row itself
        per_department = _ticket_figures(ctx, period, conn)
        for department, values in _task_figures(ctx, period, conn).items():
            per_department.setdefault(department, {}).update(values)
        company: dict[str, float] = {}
        for department, values in per_department.items():
            figures[(label, department)] = values
            for key, value in values.items():
                if key != "department_id":
                    company[key] = company.get(key, 0) + value
        figures[(label, COMPANY)] = company
    return figures


@metric("reported_metric_mismatch")
def reported_metric_mismatch(ctx: MetricContext) -> Records:
    r, m = ctx.source.table("analysis_reports"), ctx.source.table("reported_metrics")
    department = sa.func.coalesce(m.c.department_id, r.c.department_id)
    # A stated figure belongs to the department it is about; a company figure to the report's author.
    submitted = sa.and_(in_period(r.c.submitted_at, ctx.period),
                        ctx.in_scope(department, analysis_reports=r.c.report_id))
    entity = m.c.report_id + "/" + m.c.metric + "/" + sa.func.coalesce(m.c.department_id, COMPANY)
    query = (sa.select(entity.label("entity_id"), department.label("department_id"), r.c.author_id.label("owner_id"),
                       m.c.report_id, m.c.metric, m.c.department_id.label("scope"), m.c.period.label("metric_period"),
                       m.c.value.label("reported"))
             .select_from(m.join(r, m.c.report_id == r.c.report_id)).where(submitted)
             .order_by(m.c.report_id, m.c.metric, m.c.department_id))
    count_tolerance, rate_tolerance = float(ctx.param("count_tolerance")), float(ctx.param("rate_tolerance"))

    def judge(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        truth = recompute(ctx, conn, (row["metric_period"] for row in rows))
        problems = []
        for row in rows:
            if row["reported"] is None or row["metric"] not in RECOMPUTABLE or not _parses(row["metric_period"]):
                continue  # dq.not_null and dq.in_set report these; there is nothing to compare
            figures = truth.get((row["metric_period"], row["scope"] or COMPANY))
            actual = _value(row["metric"], figures) if figures is not None else (
                0.0 if row["metric"] not in RATE_METRICS else None)
            if actual is None:
                continue  # nothing to recompute against: no population in that period
            reported = float(row["reported"])
            if row["metric"] in RATE_METRICS:
                deviation, tolerance = abs(reported - actual), rate_tolerance
            else:
                deviation, tolerance = abs(reported - actual) / max(abs(actual), 1.0), count_tolerance
            if round(deviation, 9) > tolerance:
                problems.append({**row, "actual": round(actual, 6), "deviation": round(deviation, 6),
                                 "is_rate": row["metric"] in RATE_METRICS})
        return problems

    population = sa.select(sa.func.count()).select_from(m.join(r, m.c.report_id == r.c.report_id)).where(submitted)
    return Records(query=query, population=population,
                   tables=("analysis_reports", "reported_metrics", "tickets", "tasks"), judge=judge)
