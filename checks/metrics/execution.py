"""Execution formulas (audit-rules.md section 4, execution)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.expression import ColumnElement

from opsaudit.checks.metrics import Aggregate, MetricContext, Records, in_period, metric
from opsaudit.checks.sqlfuncs import seconds_between

DAY = 86400.0


def done_in(t: FromClause, ctx: MetricContext) -> ColumnElement[bool]:
    return sa.and_(t.c.status == "done", in_period(t.c.completed_at, ctx.period))


def _scoped(ctx: MetricContext, t: FromClause) -> ColumnElement[bool]:
    """Tasks of the audit's departments (and sample)."""
    return ctx.in_scope(t.c.department_id, tasks=t.c.task_id)


def _tasks(ctx: MetricContext, *, relation: str, window: ColumnElement[bool], population: ColumnElement[bool],
           numerator: ColumnElement[Any], denominator: ColumnElement[Any],
           offending: ColumnElement[bool], samples: tuple[str, ...]) -> Aggregate:
    t = ctx.source.table("tasks")
    return Aggregate(
        relation=relation, from_=t, window=sa.and_(window, _scoped(ctx, t)), entities={"department": t.c.department_id},
        department=t.c.department_id, record_id=t.c.task_id, population=population,
        numerator=numerator, denominator=denominator, offending=offending, tables=("tasks",),
        samples=tuple(t.c[name] for name in samples),
    )


@metric("task_on_time")
def task_on_time(ctx: MetricContext) -> Aggregate:
    t = ctx.source.table("tasks")
    on_time = sa.and_(t.c.completed_at.is_not(None), t.c.completed_at <= t.c.due_at)
    population = t.c.status != "cancelled"
    return _tasks(ctx, relation="tasks:due_at", window=in_period(t.c.due_at, ctx.period),
                  population=population, numerator=sa.case((on_time, 1), else_=0),
                  denominator=sa.literal(1), offending=sa.and_(population, sa.not_(on_time)),
                  samples=("due_at", "completed_at", "status"))


@metric("task_outcome")
def task_outcome(ctx: MetricContext) -> Aggregate:
    t = ctx.source.table("tasks")
    reached = t.c.actual_output >= t.c.expected_output
    population = t.c.expected_output.is_not(None)
    return _tasks(ctx, relation="tasks:completed_at", window=done_in(t, ctx), population=population,
                  numerator=sa.case((reached, 1), else_=0), denominator=sa.literal(1),
                  offending=sa.and_(population, sa.not_(sa.func.coalesce(reached, False))),
                  samples=("expected_output", "actual_output"))


def _spend_ratio(ctx: MetricContext, actual: str, budget: str) -> Aggregate:
    """sum(actual) / sum(budget) over done tasks that have both figures."""
    t = ctx.source.table("tasks")
    population = sa.and_(t.c[budget] > 0, t.c[actual].is_not(None), t.c[actual] >= 0)
    over = t.c[actual] > t.c[budget] if ctx.rule.op == "at_most" else t.c[actual] < t.c[budget]
    return _tasks(ctx, relation="tasks:completed_at", window=done_in(t, ctx), population=population,
                  numerator=t.c[actual], denominator=t.c[budget], offending=sa.and_(population, over),
                  samples=(budget, actual))


@metric("task_cost_ratio")
def task_cost_ratio(ctx: MetricContext) -> Aggregate:
    return _spend_ratio(ctx, "actual_cost", "budget_cost")


@metric("task_hours_ratio")
def task_hours_ratio(ctx: MetricContext) -> Aggregate:
    return _spend_ratio(ctx, "actual_hours", "budget_hours")


def _task_rows(t: FromClause, d: FromClause) -> list[ColumnElement[Any]]:
    return [t.c.task_id.label("entity_id"), t.c.department_id.label("department_id"),
            sa.func.coalesce(t.c.owner_id, d.c.head_id).label("owner_id"), t.c.title.label("task_title")]


def _with_departments(ctx: MetricContext) -> tuple[FromClause, FromClause, FromClause]:
    t, d = ctx.source.table("tasks"), ctx.source.table("departments")
    return t, d, t.outerjoin(d, t.c.department_id == d.c.department_id)


def _task_overrun(ctx: MetricContext, actual: str, budget: str) -> Records:
    t, d, joined = _with_departments(ctx)
    limit = float(ctx.param("task_limit"))
    population = sa.and_(done_in(t, ctx), _scoped(ctx, t), t.c[budget] > 0, t.c[actual].is_not(None))
    query = (
        sa.select(*_task_rows(t, d), t.c[actual].label("actual"), t.c[budget].label("budget"),
                  (t.c[actual] / t.c[budget]).label("ratio"))
        .select_from(joined).where(population, t.c[actual] > limit * t.c[budget]).order_by(t.c.task_id)
    )
    return Records(query=query, population=sa.select(sa.func.count()).select_from(t).where(population),
                   tables=("tasks", "departments"))


@metric("task_cost_overrun")
def task_cost_overrun(ctx: MetricContext) -> Records:
    return _task_overrun(ctx, "actual_cost", "budget_cost")


@metric("task_hours_overrun")
def task_hours_overrun(ctx: MetricContext) -> Records:
    return _task_overrun(ctx, "actual_hours", "budget_hours")


@metric("task_overdue")
def task_overdue(ctx: MetricContext) -> Records:
    """Open past its deadline at the end of P, or done in P more than `grace_days` late."""
    t, d, joined = _with_departments(ctx)
    end = sa.literal(ctx.period.end, sa.DateTime)
    # Open at the end of P, whatever the status is today: not completed by then, and not cancelled.
    not_done_by_end = sa.or_(sa.and_(t.c.completed_at.is_(None), t.c.status != "done"),
                             t.c.completed_at >= ctx.period.end)
    still_open = sa.and_(t.c.due_at < ctx.period.end, t.c.status != "cancelled", not_done_by_end)
    late_done = sa.and_(done_in(t, ctx), seconds_between(t.c.due_at, t.c.completed_at)
                        > float(ctx.param("grace_days")) * DAY)
    days_late = sa.case((still_open, seconds_between(t.c.due_at, end)),
                        else_=seconds_between(t.c.due_at, t.c.completed_at)) / DAY
    as_of = (ctx.period.end - timedelta(days=1)).date().isoformat()  # lateness is measured at the end of P
    query = (
        sa.select(*_task_rows(t, d), t.c.priority, t.c.status, days_late.label("days_late"),
                  t.c.due_at, t.c.completed_at, still_open.label("still_open"), sa.literal(as_of).label("as_of"))
        .select_from(joined).where(sa.or_(still_open, late_done), _scoped(ctx, t)).order_by(t.c.task_id)
    )
    examined = sa.and_(sa.or_(in_period(t.c.due_at, ctx.period), still_open, done_in(t, ctx)), _scoped(ctx, t))
    return Records(query=query, population=sa.select(sa.func.count()).select_from(t).where(examined),
                   tables=("tasks", "departments"))


@metric("task_process")
def task_process(ctx: MetricContext) -> Records:
    t, d, joined = _with_departments(ctx)
    reasons = sa.case(
        (t.c.started_at.is_(None), "not_started"),
        (t.c.completed_at < t.c.started_at, "completed_before_started"),
        (t.c.owner_id.is_(None), "no_owner"),
        else_=None,
    )
    query = (
        sa.select(*_task_rows(t, d), reasons.label("reason"), t.c.started_at, t.c.completed_at)
        .select_from(joined).where(done_in(t, ctx), _scoped(ctx, t), reasons.is_not(None)).order_by(t.c.task_id)
    )
    return Records(query=query, population=sa.select(sa.func.count()).select_from(t).where(done_in(t, ctx),
                                                                                           _scoped(ctx, t)),
                   tables=("tasks", "departments"))
