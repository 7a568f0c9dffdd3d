"""Customer-service formulas (audit-rules.md section 4, customer_service)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.expression import ColumnElement

from opsaudit.checks.metrics import Aggregate, MetricContext, Records, in_period, metric, rate
from opsaudit.checks.sqlfuncs import elapsed_within
from opsaudit.periods import Period

CHANNELS = ("phone", "chat", "email", "web", "onsite", "other")
HANDLED = ("resolved", "closed")


def _tickets(ctx: MetricContext, population: ColumnElement[bool], success: ColumnElement[bool],
             samples: tuple[str, ...]) -> Aggregate:
    t = ctx.source.table("tickets")
    return rate(
        population, success,
        relation="tickets:opened_at", from_=t, window=sa.and_(in_period(t.c.opened_at, ctx.period), _scoped(ctx, t)),
        entities={"department": t.c.department_id, "agent": t.c.agent_id},
        department=t.c.department_id, record_id=t.c.ticket_id, tables=("tickets",),
        samples=tuple(t.c[name] for name in samples),
    )


def _scoped(ctx: MetricContext, t: FromClause) -> ColumnElement[bool]:
    """Tickets of the audit's departments (and sample): reviews follow the ticket they review."""
    return ctx.in_scope(t.c.department_id, tickets=t.c.ticket_id)


def rated(t: FromClause) -> ColumnElement[bool]:
    return t.c.satisfaction.between(1, 5)


def satisfied(t: FromClause) -> ColumnElement[bool]:
    return t.c.satisfaction >= 4


def first_response_in_sla(t: FromClause, params: dict[str, Any]) -> ColumnElement[bool]:
    """First answered within the channel's SLA (hours per channel from the rule's params)."""
    limit = sa.case(
        *((t.c.channel == channel, float(params[f"sla_hours_{channel}"]) * 3600) for channel in CHANNELS),
        else_=float(params["sla_hours_other"]) * 3600,
    )
    return sa.and_(t.c.first_response_at.is_not(None), elapsed_within(t.c.opened_at, t.c.first_response_at, 0, limit))


@metric("ticket_satisfaction")
def ticket_satisfaction(ctx: MetricContext) -> Aggregate:
    t = ctx.source.table("tickets")
    return _tickets(ctx, rated(t), satisfied(t), ("agent_id", "satisfaction"))


@metric("complaint_satisfaction")
def complaint_satisfaction(ctx: MetricContext) -> Aggregate:
    t = ctx.source.table("tickets")
    return _tickets(ctx, sa.and_(rated(t), t.c.kind == "complaint"), satisfied(t), ("agent_id", "satisfaction"))


@metric("ticket_handling")
def ticket_handling(ctx: MetricContext) -> Aggregate:
    t = ctx.source.table("tickets")
    grace = float(ctx.param("min_age_hours")) * 3600
    old_enough = elapsed_within(t.c.opened_at, sa.literal(ctx.period.end, sa.DateTime), low=grace)
    return _tickets(ctx, old_enough, t.c.status.in_(HANDLED), ("agent_id", "opened_at", "status"))


@metric("ticket_revisit")
def ticket_revisit(ctx: MetricContext) -> Aggregate:
    t = ctx.source.table("tickets")
    done_at = sa.func.coalesce(t.c.resolved_at, t.c.closed_at)
    within = float(ctx.param("within_days")) * 86400
    revisited = sa.and_(t.c.revisited_at.is_not(None), elapsed_within(done_at, t.c.revisited_at, 0, within))
    # A ticket resolved days before the audit may still be followed up in time: judge it later.
    window_closed = elapsed_within(done_at, sa.literal(ctx.now, sa.DateTime), low=within)
    return _tickets(ctx, sa.and_(t.c.status.in_(HANDLED), sa.or_(revisited, window_closed)), revisited,
                    ("agent_id", "resolved_at", "closed_at", "revisited_at"))


@metric("ticket_first_response")
def ticket_first_response(ctx: MetricContext) -> Aggregate:
    t = ctx.source.table("tickets")
    return _tickets(ctx, sa.true(), first_response_in_sla(t, ctx.rule.params),
                    ("agent_id", "channel", "opened_at", "first_response_at"))


def _reviews(ctx: MetricContext) -> tuple[FromClause, FromClause, FromClause]:
    r, t = ctx.source.table("qa_reviews"), ctx.source.table("tickets")
    return r, t, r.join(t, r.c.ticket_id == t.c.ticket_id)


def reviews_in(period: Period, r: FromClause) -> ColumnElement[bool]:
    return in_period(r.c.reviewed_at, period)


def _reviews_window(ctx: MetricContext, r: FromClause, t: FromClause) -> ColumnElement[bool]:
    return sa.and_(reviews_in(ctx.period, r), _scoped(ctx, t))


@metric("qa_compliance")
def qa_compliance(ctx: MetricContext) -> Aggregate:
    r, t, joined = _reviews(ctx)
    compliant = r.c.compliant.is_(True)
    return Aggregate(
        relation="qa_reviews:reviewed_at", from_=joined, window=_reviews_window(ctx, r, t),
        entities={"department": t.c.department_id, "agent": t.c.agent_id}, department=t.c.department_id,
        record_id=r.c.review_id, population=sa.true(), numerator=sa.case((compliant, 1), else_=0),
        denominator=sa.literal(1), offending=sa.not_(compliant), tables=("qa_reviews", "tickets"),
        samples=(r.c.ticket_id, t.c.agent_id, r.c.reviewer_id, r.c.notes),
    )


def _qa_score(ctx: MetricContext, score: ColumnElement[Any]) -> Aggregate:
    """The mean of one score of the QA reviews in P (0..100), per agent; a review below the target offends."""
    r, t, joined = _reviews(ctx)
    scored = score.between(0, 100)
    return Aggregate(
        relation="qa_reviews:reviewed_at", from_=joined, window=_reviews_window(ctx, r, t),
        entities={"department": t.c.department_id, "agent": t.c.agent_id}, department=t.c.department_id,
        record_id=r.c.review_id, population=scored, numerator=score,
        denominator=sa.literal(1), offending=sa.and_(scored, score < ctx.rule.target),
        tables=("qa_reviews", "tickets"), samples=(r.c.ticket_id, score, r.c.reviewer_id, r.c.notes),
    )


@metric("qa_attitude")
def qa_attitude(ctx: MetricContext) -> Aggregate:
    return _qa_score(ctx, ctx.source.table("qa_reviews").c.attitude_score)


@metric("qa_resolution")
def qa_resolution(ctx: MetricContext) -> Aggregate:
    """Problem-solving ability (seed 000 §3.4.2): the reviewers' resolution score."""
    return _qa_score(ctx, ctx.source.table("qa_reviews").c.resolution_score)


def _low_reviews(ctx: MetricContext, score_column: str) -> Records:
    """A review that scored the agent below the bar: the ticket, its agent, the reviewer and the
    reviewer's note, so the department head knows whom to coach and why."""
    r, t, joined = _reviews(ctx)
    staff = ctx.source.table("staff")
    agent, reviewer = staff.alias("agent"), staff.alias("reviewer")
    window = _reviews_window(ctx, r, t)
    query = (
        sa.select(t.c.ticket_id.label("entity_id"), t.c.department_id.label("department_id"),
                  sa.null().label("owner_id"), r.c.review_id, r.c[score_column].label("score"), t.c.agent_id,
                  agent.c.name.label("agent_name"), r.c.reviewer_id, reviewer.c.name.label("reviewer_name"),
                  r.c.notes)
        .select_from(joined.outerjoin(agent, agent.c.staff_id == t.c.agent_id)
                     .outerjoin(reviewer, reviewer.c.staff_id == r.c.reviewer_id))
        .where(window, r.c[score_column] < float(ctx.param("below")))
        .order_by(t.c.ticket_id, r.c.review_id)
    )
    population = sa.select(sa.func.count()).select_from(joined).where(window)
    return Records(query=query, population=population, tables=("qa_reviews", "tickets", "staff"))


@metric("qa_low_review")
def qa_low_review(ctx: MetricContext) -> Records:
    return _low_reviews(ctx, "attitude_score")


@metric("qa_low_resolution")
def qa_low_resolution(ctx: MetricContext) -> Records:
    return _low_reviews(ctx, "resolution_score")


@metric("ticket_reopen")
def ticket_reopen(ctx: MetricContext) -> Aggregate:
    """Tickets resolved or closed in P that were reopened (a problem not solved the first time), of
    all tickets resolved or closed in P. The offending records are the reopened ones."""
    t = ctx.source.table("tickets")
    done_at = sa.func.coalesce(t.c.resolved_at, t.c.closed_at)
    handled, reopened = t.c.status.in_(HANDLED), t.c.reopened_count > 0
    return Aggregate(
        relation="tickets:done_at", from_=t, window=sa.and_(in_period(done_at, ctx.period), _scoped(ctx, t)),
        entities={"department": t.c.department_id, "agent": t.c.agent_id}, department=t.c.department_id,
        record_id=t.c.ticket_id, population=handled, numerator=sa.case((reopened, 1), else_=0),
        denominator=sa.literal(1), offending=sa.and_(handled, reopened), tables=("tickets",),
        samples=(t.c.agent_id, t.c.resolved_at, t.c.closed_at, t.c.reopened_count),
    )
