"""Absence as a finding (audit-rules.md section 4, "What must exist"): plan.missing and
data.report_missing, over the calendar of deliverables owed (checks/deliverables.py).

Each rule is one query: the departments that owe a deliverable, crossed with the deliverables due
in the audit period, less those with a row in plans (or analysis_reports) for that department,
kind and period. A row in any state counts as made: a late or unapproved one is another rule's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.expression import ColumnElement

from opsaudit.checks.deliverables import Owed, owed_in
from opsaudit.checks.metrics import MetricContext, Records, metric
from opsaudit.config.models import AFTER_FIRST_REPORT, BELOW_OPERATIONS, Deliverables


def calendar_settings() -> tuple[Deliverables, str]:
    """The company's deliverables.yaml and its operations department (OPSAUDIT_OPERATIONS_DEPARTMENT),
    as the audit that runs the rule reads them."""
    from opsaudit.settings import load_settings

    settings = load_settings()
    return settings.load_config().deliverables, settings.operations_department


def _calendar(owed: list[Owed]) -> FromClause:
    """The deliverables owed as rows (kind, period, due_on); none when nothing fell due."""
    rows = [sa.select(sa.literal(o.kind, sa.String).label("kind"), sa.literal(o.period, sa.String).label("period"),
                      sa.literal(o.due_on.isoformat(), sa.String).label("due_on")) for o in owed]
    if not rows:
        rows = [sa.select(sa.literal("", sa.String).label("kind"), sa.literal("", sa.String).label("period"),
                          sa.literal("", sa.String).label("due_on")).where(sa.false())]
    return (sa.union_all(*rows) if len(rows) > 1 else rows[0]).subquery("owed")


def _in_scope(ctx: MetricContext, department: ColumnElement[Any]) -> ColumnElement[bool]:
    """The audit's departments. A spot check's sample of records holds no record that was never
    made: there is nothing of it to judge."""
    if ctx.scope.sample_table is not None:
        return sa.false()
    return ctx.in_scope(department)


# A condition on a department (d) and a deliverable of the calendar (c).
Test = Callable[[FromClause, FromClause], ColumnElement[bool]]


def _missing(ctx: MetricContext, owed: list[Owed], owing: Test, made: Test, table: str) -> Records:
    """One row per department, kind and period owed (`owing`) and not made (`made`), with its facts."""
    d, c = ctx.source.table("departments"), _calendar(owed)
    owes = sa.and_(owing(d, c), _in_scope(ctx, d.c.department_id))
    crossed = d.join(c, sa.true())
    query = (sa.select((d.c.department_id + "/" + c.c.kind + "/" + c.c.period).label("entity_id"),
                       d.c.department_id.label("department_id"), d.c.head_id.label("owner_id"),
                       c.c.kind, c.c.period.label("deliverable_period"), c.c.due_on)
             .select_from(crossed).where(owes, sa.not_(made(d, c)))
             .order_by(d.c.department_id, c.c.due_on, c.c.kind))
    population = sa.select(sa.func.count()).select_from(crossed).where(owes)
    return Records(query=query, population=population, tables=("departments", table))


@metric("plan_missing")
def plan_missing(ctx: MetricContext) -> Records:
    """Plans the rules require (seed 004) that nobody made: no row for the department, level and period."""
    deliverables, operations = calendar_settings()
    wanted = deliverables.plans
    p = ctx.source.table("plans")

    def owing(d: FromClause, _c: FromClause) -> ColumnElement[bool]:
        if wanted.departments == BELOW_OPERATIONS:
            return d.c.parent_id == operations
        return d.c.department_id.in_(wanted.departments)

    def made(d: FromClause, c: FromClause) -> ColumnElement[bool]:
        return sa.exists().where(p.c.department_id == d.c.department_id, p.c.level == c.c.kind,
                                 p.c.period == c.c.period)

    return _missing(ctx, owed_in(ctx.period, wanted.due), owing, made, "plans")


@metric("report_missing")
def report_missing(ctx: MetricContext) -> Records:
    """Analysis reports the rules require that nobody registered. By default a department owes a
    report of a kind for every period after the first it registered one for."""
    deliverables, _ = calendar_settings()
    wanted = deliverables.reports
    r = ctx.source.table("analysis_reports")

    def of_kind(d: FromClause, c: FromClause) -> list[ColumnElement[bool]]:
        return [r.c.department_id == d.c.department_id, r.c.kind == c.c.kind]

    def owing(d: FromClause, c: FromClause) -> ColumnElement[bool]:
        if wanted.departments == AFTER_FIRST_REPORT:
            # Labels of one kind sort as their periods do; one of another shape (a month's label
            # on a quarterly report) is dq's finding, not an earlier period.
            return sa.exists().where(*of_kind(d, c), r.c.period < c.c.period,
                                     sa.func.length(r.c.period) == sa.func.length(c.c.period))
        return d.c.department_id.in_(wanted.departments)

    def made(d: FromClause, c: FromClause) -> ColumnElement[bool]:
        return sa.exists().where(*of_kind(d, c), r.c.period == c.c.period)

    return _missing(ctx, owed_in(ctx.period, wanted.due), owing, made, "analysis_reports")
