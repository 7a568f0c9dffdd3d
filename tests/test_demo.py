"""The demo generator: deterministic, the sizes asked for, and every planted problem really in the data."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from opsaudit import contract, periods
from opsaudit.demo import DemoSummary, build_demo
from opsaudit.demo.timeline import Timeline

AS_OF = datetime(2026, 11, 18)  # last complete week 2026-W46, month 2026-10, quarter 2026Q3
WEEK, MONTH, QUARTER = "2026-W46", "2026-10", "2026Q3"
SMALL = 2_000  # tickets per month where only the shape matters
# Large enough for every planted customer-service problem to reach the rules' minimum population.
PLANTED = 4_000

# Every rule id of audit-rules.md section 4, less dq.freshness, which the demo does not plant.
CATALOGUE = {
    "cs.satisfaction_rate", "cs.complaint_satisfaction_rate", "cs.handling_rate", "cs.revisit_rate",
    "cs.first_response_rate", "cs.qa_attitude", "cs.qa_resolution", "cs.qa_compliance", "cs.reopen_rate",
    "exec.on_time_rate", "exec.overdue_task", "exec.outcome_shortfall", "exec.cost_overrun",
    "exec.hours_overrun", "exec.idle_resources", "exec.process_violation",
    "plan.late_submission", "plan.unapproved", "plan.not_decomposed", "plan.target_unreasonable",
    "plan.missing_market_research", "plan.missing_signoff", "plan.adjustment_unapproved",
    "plan.completion_rate", "plan.missing",
    "data.report_late", "data.report_incomplete", "data.report_unreviewed", "data.report_missing",
    "data.metric_mismatch",
    "dq.not_null", "dq.in_set", "dq.range", "dq.unique", "dq.reference", "dq.time_order",
}
SLA = {"phone": 3600, "chat": 3600, "onsite": 3600, "email": 86400, "web": 86400, "other": 86400}


def _fingerprint(engine: sa.Engine) -> dict[str, str]:
    """A hash of every contract table's rows in a fixed order."""
    out = {}
    with engine.connect() as conn:
        for name in contract.TABLE_NAMES:
            ncols = len(contract.metadata.tables[name].columns)
            order = ", ".join(str(i) for i in range(1, ncols + 1))
            rows = conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY {order}").fetchall()
            out[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def _rows(conn: sa.Connection, sql: str, **params: object) -> list[sa.Row]:
    """Rows of a textual query; use _select where timestamps come back (SQLite returns them as text)."""
    return conn.execute(sa.text(sql), params).fetchall()


def _select(conn: sa.Connection, table: str, *columns: str, where=None) -> list[sa.Row]:
    t = contract.metadata.tables[table]
    query = sa.select(*(t.c[c] for c in columns))
    return conn.execute(query if where is None else query.where(where(t))).fetchall()


def _ids(summary: DemoSummary, rule_id: str, entity_type: str | None = None) -> list[str]:
    return [p.entity_id for p in summary.planted
            if p.rule_id == rule_id and (entity_type is None or p.entity_type == entity_type)]


def test_same_seed_same_rows_other_seed_other_rows(engine):
    first = build_demo(engine, as_of=AS_OF, tickets_per_month=SMALL)
    rows = _fingerprint(engine)
    again = build_demo(engine, as_of=AS_OF, tickets_per_month=SMALL)
    assert _fingerprint(engine) == rows
    assert again == first
    build_demo(engine, seed=7, as_of=AS_OF, tickets_per_month=SMALL)
    other = _fingerprint(engine)
    assert other["tickets"] != rows["tickets"]
    assert other["staff"] != rows["staff"]


def test_row_counts_are_what_was_asked_and_what_is_stored(engine):
    summary = build_demo(engine, as_of=AS_OF, total_tickets=12_345)
    assert summary.row_counts["tickets"] == 12_345
    with engine.connect() as conn:
        stored = {name: conn.execute(sa.select(sa.func.count()).select_from(
            contract.metadata.tables[name])).scalar_one() for name in contract.TABLE_NAMES}
    assert summary.row_counts == stored
    assert stored["departments"] >= 6 and 80 <= stored["staff"] <= 100
    assert min(stored.values()) > 0

    by_month = build_demo(engine, as_of=AS_OF, tickets_per_month=SMALL, months=5)
    # Four complete months and 17 of November's 30 days.
    assert by_month.row_counts["tickets"] == pytest.approx(SMALL * (4 + 17 / 30), rel=0.01)
    assert by_month.months == 5 and by_month.as_of == AS_OF


def test_the_company_looks_like_the_brief(engine):
    build_demo(engine, as_of=AS_OF, tickets_per_month=SMALL)
    with engine.connect() as conn:
        roles = Counter(r.role for r in _rows(conn, "SELECT role FROM staff WHERE department_id = 'OPS'"))
        assert roles["manager"] == 1 and roles["deputy_manager"] == 1 and 2 <= roles["auditor"] <= 3
        heads = _rows(conn, "SELECT d.department_id, s.role FROM departments d JOIN staff s ON s.staff_id = d.head_id")
        assert len(heads) == 8 and {r.role for r in heads} == {"manager"}
        agents = _rows(conn, "SELECT active FROM staff WHERE role = 'agent'")
        assert 55 <= len(agents) <= 65 and 0 < sum(not r.active for r in agents) < 6
        assert _rows(conn, "SELECT email FROM staff WHERE staff_id = 'S017'")[0].email == "s017@example.com"
        tickets = _select(conn, "tickets", "channel", "kind", "satisfaction", "opened_at", "first_response_at")
    rated = [t.satisfaction for t in tickets if t.satisfaction is not None]
    assert 0.5 < len(rated) / len(tickets) < 0.7
    assert sum(s >= 4 for s in rated) / len(rated) > 0.9
    within = sum(t.first_response_at is not None and (t.first_response_at - t.opened_at).total_seconds()
                 <= SLA.get(t.channel, 0) for t in tickets)
    assert within / len(tickets) > 0.95
    assert Counter(t.kind for t in tickets).most_common(1)[0][0] == "consultation"


def test_every_rule_is_planted_in_its_audit_period(engine):
    summary = build_demo(engine, as_of=AS_OF, tickets_per_month=PLANTED)
    assert {p.rule_id for p in summary.planted} == CATALOGUE
    allowed = {"department", "agent", "task", "plan", "plan_target", "adjustment", "report",
               "reported_metric", "ticket", "table_column", "company", "deliverable"}
    assert {p.entity_type for p in summary.planted} <= allowed
    for p in summary.planted:
        area = p.rule_id.split(".")[0]
        expected = {"cs": {WEEK, MONTH}, "exec": {MONTH}, "plan": {QUARTER}, "data": {QUARTER},
                    "dq": {QUARTER}}[area]
        assert p.period in expected, p
    assert ("cs.handling_rate", WEEK) in {(p.rule_id, p.period) for p in summary.planted}
    assert len(set(summary.planted)) == len(summary.planted)


def test_planted_problems_are_in_the_data(engine):
    summary = build_demo(engine, as_of=AS_OF, tickets_per_month=PLANTED)
    month, quarter = periods.parse_period(MONTH), periods.parse_period(QUARTER)
    with engine.connect() as conn:
        # Customer service: CS1's satisfaction far below the others' in the month.
        rated = Counter()
        satisfied = Counter()
        for t in _select(conn, "tickets", "department_id", "satisfaction",
                         where=lambda t: t.c.opened_at.between(month.start, month.end - timedelta(seconds=1))):
            if t.satisfaction is not None:
                rated[t.department_id] += 1
                satisfied[t.department_id] += t.satisfaction >= 4
        rates = {d: satisfied[d] / rated[d] for d in rated}
        assert rates["CS1"] < 0.85 and rates["CS2"] > 0.92 and rates["CS3"] > 0.92
        [ticket] = _ids(summary, "cs.qa_attitude", "ticket")
        assert _rows(conn, "SELECT MIN(attitude_score) AS s FROM qa_reviews WHERE ticket_id = :t", t=ticket)[0].s < 60
        [ticket] = _ids(summary, "cs.qa_resolution", "ticket")
        assert _rows(conn, "SELECT MIN(resolution_score) AS s FROM qa_reviews WHERE ticket_id = :t",
                     t=ticket)[0].s < 60
        # CS2's tickets resolved in the month were reopened far more often than the others'.
        reopened = {r.department_id: r.share for r in _rows(
            conn, "SELECT department_id, AVG(CASE WHEN reopened_count > 0 THEN 1.0 ELSE 0.0 END) AS share "
                  "FROM tickets WHERE status IN ('resolved', 'closed') AND resolved_at >= :start "
                  "AND resolved_at < :end GROUP BY department_id", start=month.start, end=month.end)}
        assert reopened["CS2"] > 0.10 and reopened["CS1"] < 0.04 and reopened["CS3"] < 0.04
        assert ("department", "CS2") in {(p.entity_type, p.entity_id) for p in summary.planted
                                         if p.rule_id == "cs.reopen_rate" and p.period == MONTH}

        # Execution: the critical task is open and more than 30 days late at the end of the month.
        overdue = _select(conn, "tasks", "priority", "status", "due_at",
                          where=lambda t: t.c.task_id.in_(_ids(summary, "exec.overdue_task")))
        critical = [t for t in overdue if t.priority == "critical"]
        assert len(overdue) == 4 and critical[0].status == "in_progress"
        assert month.end - critical[0].due_at > timedelta(days=30)
        done = _select(conn, "tasks", "actual_cost", "budget_cost", where=lambda t: sa.and_(
            t.c.department_id == "CS3", t.c.status == "done", t.c.completed_at >= month.start,
            t.c.completed_at < month.end))
        assert sum(t.actual_cost for t in done) / sum(t.budget_cost for t in done) > 1.2

        # Planning: a plan approved in the quarter by a deputy manager.
        roles = dict(_rows(conn, "SELECT staff_id, role FROM staff"))
        approvals = _select(conn, "plans", "approved_by", "approved_at",
                            where=lambda t: t.c.plan_id.in_(_ids(summary, "plan.unapproved")))
        assert {(roles.get(r.approved_by), r.approved_at is not None and quarter.contains(r.approved_at))
                for r in approvals} == {("deputy_manager", True), (None, False)}

        # Planning and data analysis: what nobody made is not there.
        [plan] = _ids(summary, "plan.missing")
        [report] = _ids(summary, "data.report_missing")
        assert (plan, report) == ("CS1/quarterly/2026Q4", "RND/monthly/2026-08")
        assert not _rows(conn, "SELECT 1 FROM plans WHERE department_id = 'CS1' AND level = 'quarterly' "
                               "AND period = '2026Q4'")
        assert _rows(conn, "SELECT 1 FROM plans WHERE department_id = 'CS2' AND level = 'quarterly' "
                           "AND period = '2026Q4'")
        months = [r.period for r in _rows(conn, "SELECT period FROM analysis_reports WHERE department_id = 'RND' "
                                                "AND kind = 'monthly' ORDER BY period")]
        assert "2026-08" not in months and "2026-07" in months

        # Data analysis: the late report is more than 14 days late and submitted in the quarter.
        [late] = _select(conn, "analysis_reports", "due_at", "submitted_at",
                         where=lambda t: t.c.report_id == _ids(summary, "data.report_late")[0])
        assert late.submitted_at - late.due_at > timedelta(days=14) and quarter.contains(late.submitted_at)

        # Data quality: the defective rows are there, and few.
        assert len(_rows(conn, "SELECT 1 FROM tickets WHERE satisfaction NOT BETWEEN 1 AND 5")) == 3
        assert [r.channel for r in _rows(conn, "SELECT channel FROM tickets WHERE channel NOT IN "
                                               "('phone', 'chat', 'email', 'web', 'onsite', 'other')")] == ["fax"]
        assert len(_rows(conn, "SELECT 1 FROM tickets WHERE closed_at < opened_at")) == 1
        assert len(_rows(conn, "SELECT 1 FROM tasks WHERE title IS NULL")) == 1
        assert len(_rows(conn, "SELECT 1 FROM tasks WHERE owner_id IS NOT NULL AND owner_id NOT IN "
                               "(SELECT staff_id FROM staff)")) == 1
        assert len(_rows(conn, "SELECT adjustment_id FROM plan_adjustments GROUP BY adjustment_id "
                               "HAVING COUNT(*) > 1")) == 1


def test_reported_metrics_match_the_data_except_the_planted_ones(engine):
    summary = build_demo(engine, as_of=AS_OF, tickets_per_month=SMALL)
    with engine.connect() as conn:
        tickets = _select(conn, "tickets", "department_id", "kind", "channel", "opened_at", "first_response_at",
                          "satisfaction")
        tasks = _select(conn, "tasks", "department_id", "due_at", "completed_at", "status")
        stated = _rows(conn, "SELECT report_id, metric, department_id, period, value FROM reported_metrics")

    by_month: dict[tuple[str, str], list] = {}
    for t in tickets:
        by_month.setdefault(("t", f"{t.opened_at:%Y-%m}"), []).append(t)
    for k in tasks:
        by_month.setdefault(("k", f"{k.due_at:%Y-%m}"), []).append(k)

    def recompute(metric: str, period: periods.Period, dept: str | None) -> float:
        months = [f"{m:%Y-%m}" for m in (period.start, period.start + timedelta(days=32),
                                          period.start + timedelta(days=63)) if m < period.end]
        ts = [t for m in months for t in by_month.get(("t", m), []) if dept in (None, t.department_id)]
        ks = [k for m in months for k in by_month.get(("k", m), [])
              if k.status != "cancelled" and dept in (None, k.department_id)]
        rated = [t.satisfaction for t in ts if t.satisfaction is not None and 1 <= t.satisfaction <= 5]
        return {
            "ticket_count": lambda: len(ts),
            "complaint_count": lambda: sum(t.kind == "complaint" for t in ts),
            "satisfaction_rate": lambda: sum(s >= 4 for s in rated) / len(rated),
            "first_response_rate": lambda: sum(
                t.first_response_at is not None and (t.first_response_at - t.opened_at).total_seconds()
                <= SLA.get(t.channel, SLA["other"]) for t in ts) / len(ts),
            "task_count": lambda: len(ks),
            "task_on_time_rate": lambda: sum(k.completed_at is not None and k.completed_at <= k.due_at
                                             for k in ks) / len(ks),
        }[metric]()

    planted = set(_ids(summary, "data.metric_mismatch"))
    assert len(planted) == 2 and len(stated) > 100
    for row in stated:
        true = recompute(row.metric, periods.parse_period(row.period), row.department_id)
        off = abs(row.value - true) / true if row.metric.endswith("_count") else abs(row.value - true)
        entity = f"{row.report_id}/{row.metric}/{row.department_id or 'company'}"
        assert (off > (0.1 if row.metric.endswith("_count") else 0.02)) == (entity in planted), entity


def test_nothing_happens_after_as_of_and_planted_entities_exist(engine):
    summary = build_demo(engine, as_of=datetime(2026, 11, 2), tickets_per_month=SMALL)  # a Monday
    as_of = summary.as_of
    events = {"tickets": ("opened_at", "first_response_at", "resolved_at", "closed_at", "revisited_at"),
              "qa_reviews": ("reviewed_at",), "plans": ("submitted_at", "approved_at"),
              "plan_signoffs": ("signed_at",), "plan_adjustments": ("requested_at", "approved_at", "effective_at"),
              "tasks": ("started_at", "completed_at"), "analysis_reports": ("submitted_at",)}
    keys = {"department": ("departments", "department_id"), "agent": ("staff", "staff_id"),
            "task": ("tasks", "task_id"), "plan": ("plans", "plan_id"), "report": ("analysis_reports", "report_id"),
            "adjustment": ("plan_adjustments", "adjustment_id"), "ticket": ("tickets", "ticket_id")}
    with engine.connect() as conn:
        for table, columns in events.items():
            t = contract.metadata.tables[table]
            for column in columns:
                newest = conn.execute(sa.select(sa.func.max(t.c[column]))).scalar_one()
                assert newest is not None and newest <= as_of, (table, column)
        for p in summary.planted:
            if p.entity_type in keys:
                table, key = keys[p.entity_type]
                assert _rows(conn, f"SELECT 1 FROM {table} WHERE {key} = :k", k=p.entity_id), p


def test_too_few_tickets_is_refused(engine):
    with pytest.raises(ValueError, match="at least 1,000 tickets"):
        build_demo(engine, as_of=AS_OF, total_tickets=50)


def test_months_must_cover_the_previous_quarter():
    with pytest.raises(ValueError, match="at least 6"):
        Timeline.build(datetime(2026, 12, 15), months=5)
    timeline = Timeline.build(datetime(2026, 11, 18), months=6)
    assert timeline.start == datetime(2026, 6, 1)
    assert (timeline.week.label, timeline.month.label, timeline.quarter.label) == (WEEK, MONTH, QUARTER)
