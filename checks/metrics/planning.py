"""Planning formulas (audit-rules.md section 4, planning; seed 004)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.expression import ColumnElement

from opsaudit.checks.metrics import Aggregate, MetricContext, Records, in_period, metric
from opsaudit.checks.sqlfuncs import blank, seconds_between
from opsaudit.periods import Period, containing, periods_ending_in, shift

DAY = 86400.0
# Who may approve a plan of each level (seed 004).
APPROVERS: dict[str, tuple[str, ...]] = {
    "annual": ("executive",),
    "quarterly": ("manager", "executive"),
    "monthly": ("manager", "executive"),
}


def _plan_rows(p: FromClause) -> list[ColumnElement[Any]]:
    return [p.c.plan_id.label("entity_id"), p.c.department_id.label("department_id"),
            p.c.owner_id.label("owner_id"), p.c.title.label("plan_title")]


def _count(p: FromClause, where: ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(p).where(where)


def submitted_in(p: FromClause, ctx: MetricContext) -> ColumnElement[bool]:
    """Plans submitted in P, of the audit's scope."""
    return sa.and_(in_period(p.c.submitted_at, ctx.period), _scoped(ctx, p))


def _scoped(ctx: MetricContext, p: FromClause, plan_id: ColumnElement[Any] | None = None) -> ColumnElement[bool]:
    """Plans of the audit's departments (and sample); `plan_id` when the rows are a plan's parts."""
    return ctx.in_scope(p.c.department_id, plans=p.c.plan_id if plan_id is None else plan_id)


@metric("plan_late")
def plan_late(ctx: MetricContext) -> Records:
    p = ctx.source.table("plans")
    end = sa.literal(ctx.period.end, sa.DateTime)
    due = sa.and_(in_period(p.c.due_at, ctx.period), _scoped(ctx, p))
    late = sa.or_(p.c.submitted_at > p.c.due_at, p.c.submitted_at.is_(None))
    days_late = seconds_between(p.c.due_at, sa.func.coalesce(p.c.submitted_at, end)) / DAY
    query = (sa.select(*_plan_rows(p), p.c.level, p.c.period.label("plan_period"), p.c.due_at,
                       p.c.submitted_at, days_late.label("days_late"))
             .where(due, late).order_by(p.c.plan_id))
    return Records(query=query, population=_count(p, due), tables=("plans",))


@metric("plan_unapproved")
def plan_unapproved(ctx: MetricContext) -> Records:
    p, s = ctx.source.table("plans"), ctx.source.table("staff")
    # The plan's approval window (approval_days after submission) ran out in P: each unapproved
    # plan is judged once, in the period its window closed, not again every period after.
    window = timedelta(days=float(ctx.param("approval_days")))
    expired = sa.and_(p.c.submitted_at >= ctx.period.start - window, p.c.submitted_at < ctx.period.end - window)
    waiting = sa.and_(expired, p.c.status != "rejected",
                      sa.or_(p.c.approved_at.is_(None), p.c.approved_at >= ctx.period.end))
    allowed = sa.or_(*(sa.and_(p.c.level == level, s.c.role.in_(roles)) for level, roles in APPROVERS.items()))
    wrong_role = sa.and_(p.c.approved_by.is_not(None), in_period(p.c.approved_at, ctx.period),
                         sa.not_(sa.func.coalesce(allowed, False)))
    reason = sa.case((waiting, "not_approved"), else_="approver_not_allowed")
    joined = p.outerjoin(s, p.c.approved_by == s.c.staff_id)
    query = (sa.select(*_plan_rows(p), p.c.level, reason.label("reason"), p.c.approved_by,
                       s.c.role.label("approver_role"))
             .select_from(joined).where(sa.or_(waiting, wrong_role), _scoped(ctx, p)).order_by(p.c.plan_id))
    examined = sa.and_(sa.or_(expired, in_period(p.c.approved_at, ctx.period)), _scoped(ctx, p))
    return Records(query=query, population=_count(p, examined), tables=("plans", "staff"))


def months_starting_in(period: Period) -> list[str]:
    """Labels of the months whose first day falls in the period."""
    labels, current = [], containing("month", period.start)
    if current.start < period.start:
        current = shift(current, 1)
    while current.start < period.end:
        labels.append(current.label)
        current = shift(current, 1)
    return labels


@metric("plan_not_decomposed")
def plan_not_decomposed(ctx: MetricContext) -> Records:
    p, t = ctx.source.table("plans"), ctx.source.table("tasks")
    in_scope = sa.and_(p.c.level == "monthly", p.c.period.in_(months_starting_in(ctx.period)),
                       p.c.approved_at.is_not(None), p.c.status.in_(("approved", "closed")), _scoped(ctx, p))
    tasks_of = sa.select(sa.func.count()).select_from(t).where(t.c.plan_id == p.c.plan_id).scalar_subquery()
    ownerless = (sa.select(sa.func.count()).select_from(t)
                 .where(t.c.plan_id == p.c.plan_id, t.c.owner_id.is_(None)).scalar_subquery())
    query = (sa.select(*_plan_rows(p), p.c.period.label("plan_period"), tasks_of.label("tasks"),
                       ownerless.label("tasks_without_owner"))
             .where(in_scope, sa.or_(tasks_of == 0, ownerless > 0)).order_by(p.c.plan_id))
    return Records(query=query, population=_count(p, in_scope), tables=("plans", "tasks"))


@metric("plan_target_change")
def plan_target_change(ctx: MetricContext) -> Records:
    p, pt = ctx.source.table("plans"), ctx.source.table("plan_targets")
    lowest, highest = float(ctx.param("min_change")), float(ctx.param("max_change"))
    query = (sa.select((pt.c.plan_id + "/" + pt.c.metric).label("entity_id"),
                       p.c.department_id.label("department_id"), p.c.owner_id.label("owner_id"),
                       pt.c.plan_id, pt.c.metric, pt.c.baseline, pt.c.target.label("target_value"),
                       pt.c.higher_is_better)
             .select_from(pt.join(p, pt.c.plan_id == p.c.plan_id))
             .where(submitted_in(p, ctx)).order_by(pt.c.plan_id, pt.c.metric))

    def keep(row: dict[str, Any]) -> dict[str, Any] | None:
        if row["target_value"] is None:
            return None  # a missing target is dq.not_null's finding, not a target to judge
        if row["baseline"] is None:
            return {**row, "reason": "no_baseline", "change": None}
        if row["baseline"] == 0:
            return None if row["target_value"] == 0 else {**row, "reason": "zero_baseline", "change": None}
        change = (row["target_value"] - row["baseline"]) / abs(row["baseline"])
        # A lower-is-better metric improves downwards: judge the change in the better direction.
        improvement = change if row["higher_is_better"] in (True, 1) else -change
        if lowest <= improvement <= highest:
            return None
        return {**row, "reason": "out_of_range", "change": round(improvement, 4)}

    population = (sa.select(sa.func.count()).select_from(pt.join(p, pt.c.plan_id == p.c.plan_id))
                  .where(submitted_in(p, ctx)))
    return Records(query=query, population=population, tables=("plans", "plan_targets"), keep=keep)


@metric("plan_market_research")
def plan_market_research(ctx: MetricContext) -> Records:
    p = ctx.source.table("plans")
    in_scope = sa.and_(submitted_in(p, ctx), p.c.level.in_(("annual", "quarterly")))
    query = (sa.select(*_plan_rows(p), p.c.level).where(in_scope, blank(p.c.market_research))
             .order_by(p.c.plan_id))
    return Records(query=query, population=_count(p, in_scope), tables=("plans",))


@metric("plan_signoff")
def plan_signoff(ctx: MetricContext) -> Records:
    p, so = ctx.source.table("plans"), ctx.source.table("plan_signoffs")
    bad = sa.and_(so.c.required.is_(True), sa.or_(
        so.c.signed_at.is_(None), sa.and_(p.c.approved_at.is_not(None), so.c.signed_at > p.c.approved_at)))
    d = ctx.source.table("departments")
    query = (sa.select(*_plan_rows(p), so.c.department_id.label("collaborator"),
                       d.c.name.label("collaborator_name"), so.c.signed_at, p.c.approved_at)
             .select_from(so.join(p, so.c.plan_id == p.c.plan_id)
                          .outerjoin(d, d.c.department_id == so.c.department_id))
             .where(submitted_in(p, ctx), bad).order_by(p.c.plan_id, so.c.department_id))
    return Records(query=query, population=_count(p, submitted_in(p, ctx)),
                   tables=("plans", "plan_signoffs", "departments"))


@metric("plan_adjustment")
def plan_adjustment(ctx: MetricContext) -> Records:
    a, p = ctx.source.table("plan_adjustments"), ctx.source.table("plans")
    reason = sa.case(
        (blank(a.c.reason), "no_reason"),
        (a.c.approved_at.is_(None), "not_approved"),
        (a.c.approved_at > a.c.effective_at, "approved_after_effective"),
        else_=None,
    )
    joined = a.outerjoin(p, a.c.plan_id == p.c.plan_id)
    requested = sa.and_(in_period(a.c.requested_at, ctx.period), _scoped(ctx, p, a.c.plan_id))
    query = (sa.select(a.c.adjustment_id.label("entity_id"), p.c.department_id.label("department_id"),
                       sa.func.coalesce(p.c.owner_id, a.c.requested_by).label("owner_id"), a.c.plan_id,
                       reason.label("reason"), a.c.requested_at, a.c.approved_at, a.c.effective_at)
             .select_from(joined).where(requested, reason.is_not(None)).order_by(a.c.adjustment_id))
    population = sa.select(sa.func.count()).select_from(joined).where(requested)
    return Records(query=query, population=population, tables=("plan_adjustments", "plans"))


@metric("plan_completion")
def plan_completion(ctx: MetricContext) -> Aggregate:
    p, pt = ctx.source.table("plans"), ctx.source.table("plan_targets")
    reached = sa.case((pt.c.higher_is_better.is_(False), pt.c.actual <= pt.c.target),
                      else_=pt.c.actual >= pt.c.target)
    population = pt.c.actual.is_not(None)
    return Aggregate(
        relation="plan_targets:period_end", from_=pt.join(p, pt.c.plan_id == p.c.plan_id),
        window=sa.and_(p.c.period.in_(periods_ending_in(ctx.period)), _scoped(ctx, p)),
        entities={"department": p.c.department_id},
        department=p.c.department_id, record_id=pt.c.plan_id + "/" + pt.c.metric, population=population,
        numerator=sa.case((reached, 1), else_=0), denominator=sa.literal(1),
        offending=sa.and_(population, sa.not_(reached)), tables=("plans", "plan_targets"),
        samples=(pt.c.target, pt.c.actual),
    )
