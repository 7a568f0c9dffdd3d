"""Every rule of checks/*.yaml on small tables built here, on SQLite and PostgreSQL.

Aggregate rules: one dataset per rule and entity type with several entities, each with a
controlled population and number of good records, so that one run shows a pass, the warning
band, a failure at each severity on both sides of each grading boundary, and insufficient data
(audit-rules.md sections 3 and 4). Record rules: one scenario per rule with offending records at
each severity and compliant records that must produce nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from builders import (
    MID_MONTH,
    MONTH,
    MONTH_NOW,
    QUARTER,
    QUARTER_NOW,
    Dataset,
    by_entity,
    company_results,
    rules_with,
    run_rule,
)

from opsaudit.checks.results import Outcome, Severity
from opsaudit.config.loader import load_config
from opsaudit.config.models import Thresholds

Expect = tuple[Outcome, Severity | None]
PASS: Expect = (Outcome.PASSED, None)
WARN: Expect = (Outcome.WARNING, None)
GEN: Expect = (Outcome.FAILED, Severity.GENERAL)
IMP: Expect = (Outcome.FAILED, Severity.IMPORTANT)
MAJ: Expect = (Outcome.FAILED, Severity.MAJOR)
NODATA: Expect = (Outcome.INSUFFICIENT_DATA, None)

SEPT_LAST_SECOND = datetime(2026, 9, 30, 23, 59, 59)
MONTH_END = datetime(2026, 11, 1)  # end of 2026-10 (exclusive)
QUARTER_END = datetime(2026, 10, 1)  # end of 2026Q3 (exclusive)

# (entity, population, good records, expected) for a rate target of 90%: up to 2 points above
# the target is the warning band, more passes; a miss of up to 5 points is general, up to 15
# important, beyond major; a population below 20 is insufficient data (even with no good record).
RATE_90 = (
    ("e93", 100, 93, PASS), ("e92", 100, 92, WARN),
    ("e91", 100, 91, WARN), ("e90", 100, 90, WARN), ("e89", 100, 89, GEN),
    ("e85", 100, 85, GEN), ("e84", 100, 84, IMP), ("e75", 100, 75, IMP), ("e74", 100, 74, MAJ),
    ("n19", 19, 0, NODATA), ("n20", 20, 20, PASS),
)
RATE_95 = (
    ("e98", 100, 98, PASS), ("e97", 100, 97, WARN),
    ("e96", 100, 96, WARN), ("e95", 100, 95, WARN), ("e94", 100, 94, GEN),
    ("e90", 100, 90, GEN), ("e89", 100, 89, IMP), ("e80", 100, 80, IMP), ("e79", 100, 79, MAJ),
    ("n19", 19, 0, NODATA), ("n20", 20, 20, PASS),
)
# A 100% target has no warning band: >= 98% general, >= 90% important, below major.
RATE_100 = (
    ("e100", 100, 100, PASS), ("e99", 100, 99, GEN), ("e98", 100, 98, GEN), ("e97", 100, 97, IMP),
    ("e90", 100, 90, IMP), ("e89", 100, 89, MAJ), ("n19", 19, 0, NODATA), ("n20", 20, 20, PASS),
)

# Plan targets are a census of commitments: 5 targets are enough to judge (audit-rules §4).
COMPLETION_90 = RATE_90[:-2] + (("n4", 4, 0, NODATA), ("n5", 5, 5, PASS))


def one_agent(rows: tuple[tuple[str, int, int, Expect], ...]) -> tuple[tuple[str, int, int, Expect], ...]:
    """The same grades for a rule judged on one agent: at most important (audit-rules §3)."""
    return tuple((entity, n, k, IMP if expected == MAJ else expected) for entity, n, k, expected in rows)


Where = dict[str, Any]
Make = Callable[[Dataset, str, Where, bool, int], None]  # data, record id, entity columns, good?, index


@dataclass(frozen=True)
class AggregateCase:
    """One aggregate rule on one entity type: a dataset and the outcome expected per entity."""

    rule_id: str
    entity_type: str
    build: Callable[[Dataset], None]
    expected: dict[str, Expect]
    populations: dict[str, int]
    record_ids: Callable[[Dataset], list[str]]
    period: str = MONTH
    now: datetime = MONTH_NOW

    @property
    def id(self) -> str:
        return f"{self.rule_id}[{self.entity_type}]"


def where_for(entity_type: str, entity: str) -> Where:
    """Department rules group by department; agent rules put every agent in department CS."""
    return {"department_id": entity} if entity_type == "department" else {"department_id": "CS", "agent_id": entity}


def rate_case(rule_id: str, entity_type: str, rows: tuple[tuple[str, int, int, Expect], ...], make: Make,
              record_ids: Callable[[Dataset], list[str]], *, noise: Callable[[Dataset, Where], None] | None = None,
              extra: tuple[Callable[[Dataset], None], dict[str, tuple[Expect, int]]] | None = None,
              period: str = MONTH, now: datetime = MONTH_NOW) -> AggregateCase:
    """Each entity gets n records, k of them good; ids are `<entity>-ok-<i>` or `<entity>-bad-<i>`.

    `noise` adds records to the first (passing) entity that would change its grade if they
    counted; `extra` builds entities of its own, given with their expected outcome and population.
    """
    expected = {entity: outcome for entity, _, _, outcome in rows}
    populations = {entity: n for entity, n, _, _ in rows}
    if extra is not None:
        expected |= {entity: outcome for entity, (outcome, _) in extra[1].items()}
        populations |= {entity: n for entity, (_, n) in extra[1].items()}

    def build(data: Dataset) -> None:
        for entity, n, k, _ in rows:
            where = where_for(entity_type, entity)
            for i in range(n):
                good = i < k
                make(data, f"{entity}-{'ok' if good else 'bad'}-{i:03d}", where, good, i)
        if noise is not None:
            noise(data, where_for(entity_type, rows[0][0]))
        if extra is not None:
            extra[0](data)

    return AggregateCase(rule_id, entity_type, build, expected, populations, record_ids, period, now)


def ticket_ids(data: Dataset) -> list[str]:
    return [row["ticket_id"] for row in data.rows["tickets"]]


def review_ids(data: Dataset) -> list[str]:
    return [row["review_id"] for row in data.rows["qa_reviews"]]


def task_ids(data: Dataset) -> list[str]:
    return [row["task_id"] for row in data.rows["tasks"]]


def target_ids(data: Dataset) -> list[str]:
    return [f"{row['plan_id']}/{row['metric']}" for row in data.rows["plan_targets"]]


# --- customer service ------------------------------------------------------------------------

def satisfaction(data: Dataset, rid: str, where: Where, good: bool, i: int) -> None:
    data.ticket(rid, **where, satisfaction=(4, 5)[i % 2] if good else (1, 2, 3)[i % 3])


def satisfaction_noise(data: Dataset, where: Where) -> None:
    """Unrated tickets, and unhappy ones opened just outside the month, or without an agent."""
    for i in range(30):
        data.ticket(f"x-unrated-{i}", **where, satisfaction=None)
        data.ticket(f"x-before-{i}", **where, satisfaction=1, opened_at=SEPT_LAST_SECOND)
        data.ticket(f"x-after-{i}", **where, satisfaction=1, opened_at=MONTH_END)
        if "agent_id" in where:
            data.ticket(f"x-no-agent-{i}", where["department_id"], None, satisfaction=1)


def complaint(data: Dataset, rid: str, where: Where, good: bool, i: int) -> None:
    data.ticket(rid, **where, kind="complaint", satisfaction=5 if good else 2)


def complaint_noise(data: Dataset, where: Where) -> None:
    for i in range(40):
        data.ticket(f"x-consultation-{i}", **where, kind="consultation", satisfaction=1)
        data.ticket(f"x-unrated-{i}", **where, kind="complaint", satisfaction=None)


def handling(data: Dataset, rid: str, where: Where, good: bool, i: int) -> None:
    if good and i % 2:
        data.ticket(rid, **where, status="closed", resolved_at=None, closed_at=MID_MONTH + timedelta(hours=3))
    elif good:
        data.ticket(rid, **where, status="resolved")
    else:
        data.ticket(rid, **where, status=("open", "in_progress")[i % 2], resolved_at=None, revisited_at=None)


def open_ticket(data: Dataset, rid: str, where: Where, opened_at: datetime) -> None:
    data.ticket(rid, **where, opened_at=opened_at, status="open", first_response_at=None, resolved_at=None,
                revisited_at=None, satisfaction=None)


def handling_noise(data: Dataset, where: Where) -> None:
    """Open tickets younger than 72 h at the end of the month, or opened before it: not counted."""
    for i in range(30):
        open_ticket(data, f"x-young-{i}", where, datetime(2026, 10, 29, 0, 0, 1))
        open_ticket(data, f"x-sept-{i}", where, datetime(2026, 9, 20))


def handling_edge(data: Dataset) -> None:
    """A ticket opened exactly 72 h before the end counts; one second later it does not."""
    where = where_for("department", "edge")
    for i in range(19):
        handling(data, f"edge-ok-{i:03d}", where, True, i)
    open_ticket(data, "edge-bad-72h", where, datetime(2026, 10, 29))
    for i in range(5):
        open_ticket(data, f"x-edge-young-{i}", where, datetime(2026, 10, 29, 0, 0, 1))


HANDLING_EDGE = (handling_edge, {"edge": (IMP, 20)})  # 19 of 20 handled: 95%


def revisit(data: Dataset, rid: str, where: Where, good: bool, i: int) -> None:
    """Good: followed up within 7 days of resolution (or of closing); bad: never, or after 8 days."""
    resolved = MID_MONTH + timedelta(hours=2)
    closed = {"status": "closed", "resolved_at": None, "closed_at": resolved}
    if good:
        after = (timedelta(days=1), timedelta(days=2), timedelta(days=6, hours=23))[i % 3]
        data.ticket(rid, **where, **(closed if i % 3 == 1 else {}), revisited_at=resolved + after)
    elif i % 3 == 1:
        data.ticket(rid, **where, revisited_at=resolved + timedelta(days=8))
    else:
        data.ticket(rid, **where, **(closed if i % 3 == 2 else {}), revisited_at=None)


def revisit_noise(data: Dataset, where: Where) -> None:
    """Tickets not yet handled, or handled tickets opened before the month: not counted."""
    for i in range(30):
        open_ticket(data, f"x-open-{i}", where, MID_MONTH)
        data.ticket(f"x-sept-{i}", **where, opened_at=datetime(2026, 9, 20), revisited_at=None)


def first_response(data: Dataset, rid: str, where: Where, good: bool, i: int) -> None:
    if good:
        channel, delay = (("phone", timedelta(minutes=10)), ("email", timedelta(hours=20)),
                          ("onsite", timedelta(minutes=59)))[i % 3]
        data.ticket(rid, **where, channel=channel, first_response_at=MID_MONTH + delay)
    else:
        channel, answered = (("phone", None), ("phone", MID_MONTH + timedelta(hours=2)),
                             ("web", MID_MONTH + timedelta(hours=25)),
                             ("chat", MID_MONTH + timedelta(minutes=61)))[i % 4]
        data.ticket(rid, **where, channel=channel, first_response_at=answered)


def first_response_noise(data: Dataset, where: Where) -> None:
    for i in range(30):
        data.ticket(f"x-before-{i}", **where, opened_at=SEPT_LAST_SECOND, first_response_at=None)
        data.ticket(f"x-after-{i}", **where, opened_at=MONTH_END, first_response_at=None)


def qa_compliance(data: Dataset, rid: str, where: Where, good: bool, i: int) -> None:
    data.ticket(f"T-{rid}", **where)
    data.review(rid, f"T-{rid}", compliant=good)


def qa_compliance_noise(data: Dataset, where: Where) -> None:
    """Non-compliant reviews made outside the month, though of tickets opened in it."""
    for i in range(30):
        data.ticket(f"T-x-{i}", **where)
        data.review(f"x-before-{i}", f"T-x-{i}", compliant=False, reviewed_at=SEPT_LAST_SECOND)
        data.review(f"x-after-{i}", f"T-x-{i}", compliant=False, reviewed_at=MONTH_END)


def qa_score_case(rule_id: str, column: str) -> AggregateCase:
    """The mean QA score per agent (attitude or resolution) against 80 (bands 5 and 15 points, at
    most important for one agent); 3 reviews needed."""
    scores = {
        "a83": ([83, 83, 83], PASS), "a82": ([82, 82, 82], WARN),
        "a81": ([76, 84, 83], WARN), "a80": ([80, 80, 80], WARN),
        "a79": ([70, 90, 77], GEN), "a75": ([75, 75, 75], GEN), "a74": ([74, 74, 74], IMP),
        "a65": ([60, 65, 70], IMP), "a64": ([64, 64, 64], IMP), "two": ([0, 0], NODATA),
        "three": ([100, 100, 100], PASS),
    }
    other = "resolution_score" if column == "attitude_score" else "attitude_score"

    def build(data: Dataset) -> None:
        for agent, (values, _) in scores.items():
            for i, score in enumerate(values):
                rid = f"{agent}-{'ok' if score >= 80 else 'bad'}-{i}"
                data.ticket(f"T-{rid}", "CS", agent)
                # The other score is low throughout: each rule reads its own column only.
                data.review(rid, f"T-{rid}", **{column: float(score), other: 10.0})
        for i in range(5):  # low scores outside the month, or on tickets without an agent
            data.ticket(f"T-x-{i}", "CS", "a82")
            data.review(f"x-before-{i}", f"T-x-{i}", **{column: 0.0}, reviewed_at=SEPT_LAST_SECOND)
            data.ticket(f"T-y-{i}", "CS", None)
            data.review(f"y-{i}", f"T-y-{i}", **{column: 0.0})

    return AggregateCase(rule_id, "agent", build, {a: e for a, (_, e) in scores.items()},
                         {a: len(v) for a, (v, _) in scores.items()}, review_ids)


# An upper limit of 5% (cs.reopen_rate): up to 2 points below the limit, and the limit itself, is
# the warning band; the excess over it is graded like a shortfall: up to 5 points general, up to
# 15 important, beyond major. Good records here are those not reopened.
LIMIT_5 = (
    ("r0", 100, 100, PASS), ("r2", 100, 98, PASS), ("r3", 100, 97, WARN), ("r5", 100, 95, WARN),
    ("r6", 100, 94, GEN), ("r10", 100, 90, GEN), ("r11", 100, 89, IMP), ("r20", 100, 80, IMP),
    ("r21", 100, 79, MAJ), ("n19", 19, 0, NODATA), ("n20", 20, 20, PASS),
)


def reopen(data: Dataset, rid: str, where: Where, good: bool, i: int) -> None:
    """Resolved (or only closed) in the month; bad: reopened once or twice before."""
    closed = {"status": "closed", "resolved_at": None, "closed_at": MID_MONTH + timedelta(hours=3)}
    data.ticket(rid, **where, **(closed if i % 4 == 3 else {}), reopened_count=0 if good else 1 + i % 2)


def reopen_noise(data: Dataset, where: Where) -> None:
    """Reopened tickets resolved outside the month, or not resolved or closed now."""
    for i in range(30):
        data.ticket(f"x-sept-{i}", **where, opened_at=SEPT_LAST_SECOND - timedelta(hours=3),
                    resolved_at=SEPT_LAST_SECOND, reopened_count=1)
        data.ticket(f"x-nov-{i}", **where, resolved_at=MONTH_END, reopened_count=1)
        data.ticket(f"x-open-{i}", **where, status="in_progress", resolved_at=MID_MONTH + timedelta(hours=1),
                    reopened_count=1)


# --- execution -------------------------------------------------------------------------------

DUE = datetime(2026, 10, 20)


def on_time(data: Dataset, rid: str, where: Where, good: bool, i: int) -> None:
    if good:
        data.task(rid, **where, due_at=DUE, completed_at=DUE if i % 2 else DUE - timedelta(days=2))
    elif i % 2:
        data.task(rid, **where, due_at=DUE, completed_at=DUE + timedelta(days=1))
    else:
        data.task(rid, **where, due_at=DUE, completed_at=None, status="in_progress")


def on_time_noise(data: Dataset, where: Where) -> None:
    """Cancelled tasks, and tasks due outside the month: not counted."""
    for i in range(30):
        data.task(f"x-cancelled-{i}", **where, due_at=DUE, completed_at=None, status="cancelled")
        data.task(f"x-before-{i}", **where, due_at=SEPT_LAST_SECOND, completed_at=DUE)
        data.task(f"x-after-{i}", **where, due_at=MONTH_END, completed_at=None, status="in_progress")


def outcome(data: Dataset, rid: str, where: Where, good: bool, i: int) -> None:
    actual = (10.0, 12.0)[i % 2] if good else (9.99, None)[i % 2]
    data.task(rid, **where, expected_output=10.0, actual_output=actual)


def outcome_noise(data: Dataset, where: Where) -> None:
    """Tasks without an expected output, not done, or done outside the month: not counted."""
    for i in range(30):
        data.task(f"x-no-expectation-{i}", **where, expected_output=None, actual_output=0.0)
        data.task(f"x-open-{i}", **where, status="in_progress", completed_at=None, actual_output=0.0)
        data.task(f"x-before-{i}", **where, completed_at=SEPT_LAST_SECOND, actual_output=0.0)
        data.task(f"x-after-{i}", **where, completed_at=MONTH_END, actual_output=0.0)


def spend_case(rule_id: str, actual: str, budget: str, rows: tuple[tuple[str, int, Expect], ...],
               summed: tuple[float, float, Expect], over: bool) -> AggregateCase:
    """sum(actual) / sum(budget) per department over 20 done tasks, budgets 50 and 150 alternating.

    `summed` is the entity "sum": one task of budget 1900 spent as given, 19 of budget 10 spent as
    given, so that the sum of figures and the mean of per-task ratios grade differently.
    `over`: a task is offending when it spends more than its budget (less, for idle resources).
    """
    expected = {entity: outcome for entity, _, outcome in rows} | {"sum": summed[2], "n19": NODATA}
    populations = {entity: 20 for entity, _, _ in rows} | {"sum": 20, "n19": 19}

    def offending(spent: float, planned: float) -> bool:
        return spent > planned if over else spent < planned

    def add(data: Dataset, entity: str, i: int, spent: float, planned: float) -> None:
        tag = "bad" if offending(spent, planned) else "ok"
        data.task(f"{entity}-{tag}-{i:03d}", entity, **{actual: spent, budget: planned})

    def build(data: Dataset) -> None:
        for entity, percent, _ in rows:
            for i in range(20):
                planned = (50.0, 150.0)[i % 2]
                add(data, entity, i, planned * percent / 100, planned)
        add(data, "sum", 0, summed[0], 1900.0)
        for i in range(1, 20):
            add(data, "sum", i, summed[1], 10.0)
        for i in range(19):
            add(data, "n19", i, 300.0, 100.0)
        first = rows[0][0]
        for i in range(10):  # not done, done outside the month, or without a budget: not counted
            wild = 1000.0 if over else 0.0
            data.task(f"x-open-{i}", first, status="in_progress", completed_at=None, **{actual: wild})
            data.task(f"x-before-{i}", first, completed_at=SEPT_LAST_SECOND, **{actual: wild})
            data.task(f"x-no-budget-{i}", first, **{actual: 500.0, budget: 0.0})
            data.task(f"x-null-budget-{i}", first, **{actual: 500.0, budget: None})
            data.task(f"x-null-actual-{i}", first, **{actual: None})

    return AggregateCase(rule_id, "department", build, expected, populations, task_ids)


# A limit of 110% of budget: the excess over the limit graded like a shortfall.
OVERRUN = (("p107", 107, PASS), ("p108", 108, WARN), ("p109", 109, WARN), ("p110", 110, WARN), ("p111", 111, GEN),
           ("p115", 115, GEN), ("p116", 116, IMP), ("p125", 125, IMP), ("p126", 126, MAJ))
# At least 50% of the budgeted hours used.
IDLE = (("p53", 53, PASS), ("p52", 52, WARN), ("p51", 51, WARN), ("p50", 50, WARN), ("p49", 49, GEN), ("p45", 45, GEN),
        ("p44", 44, IMP), ("p35", 35, IMP), ("p34", 34, MAJ))


# --- planning --------------------------------------------------------------------------------

PLAN_PERIODS = (("monthly", "2026-07"), ("monthly", "2026-09"), ("quarterly", "2026Q3"), ("monthly", "2026-08"))


def completion(data: Dataset, rid: str, where: Where, good: bool, i: int) -> None:
    """Targets spread over four plans whose periods end in the quarter; half lower-is-better."""
    entity = where["department_id"]
    if i < len(PLAN_PERIODS):
        level, period = PLAN_PERIODS[i]
        data.plan(f"{entity}-P{i}", entity, level=level, period=period)
    higher = i % 2 == 0
    if good:
        actual = (100.0 if i % 4 < 2 else 120.0) if higher else (100.0 if i % 4 < 2 else 80.0)
    else:
        actual = 99.0 if higher else 101.0
    data.target(f"{entity}-P{i % len(PLAN_PERIODS)}", rid, target=100.0, actual=actual, higher_is_better=higher)


def completion_noise(data: Dataset, where: Where) -> None:
    """Targets without an actual, and plans whose period does not end in the quarter."""
    entity = where["department_id"]
    for i in range(30):
        data.target(f"{entity}-P0", f"x-no-actual-{i}", target=100.0, actual=None)
    for suffix, level, period in (("oct", "monthly", "2026-10"), ("q4", "quarterly", "2026Q4"),
                                  ("year", "annual", "2026"), ("june", "monthly", "2026-06")):
        data.plan(f"x-{suffix}", entity, level=level, period=period)
        for i in range(30):
            data.target(f"x-{suffix}", f"m{i}", target=100.0, actual=0.0)


AGGREGATE_CASES = [
    rate_case("cs.satisfaction_rate", "department", RATE_90, satisfaction, ticket_ids, noise=satisfaction_noise),
    rate_case("cs.satisfaction_rate", "agent", one_agent(RATE_90), satisfaction, ticket_ids,
              noise=satisfaction_noise),
    rate_case("cs.complaint_satisfaction_rate", "department", RATE_95, complaint, ticket_ids,
              noise=complaint_noise),
    rate_case("cs.handling_rate", "department", RATE_100, handling, ticket_ids, noise=handling_noise,
              extra=HANDLING_EDGE),
    rate_case("cs.revisit_rate", "department", RATE_100, revisit, ticket_ids, noise=revisit_noise),
    rate_case("cs.first_response_rate", "department", RATE_95, first_response, ticket_ids,
              noise=first_response_noise),
    rate_case("cs.first_response_rate", "agent", one_agent(RATE_95), first_response, ticket_ids,
              noise=first_response_noise),
    qa_score_case("cs.qa_attitude", "attitude_score"),
    qa_score_case("cs.qa_resolution", "resolution_score"),
    rate_case("cs.qa_compliance", "department", RATE_95, qa_compliance, review_ids, noise=qa_compliance_noise),
    rate_case("cs.reopen_rate", "department", LIMIT_5, reopen, ticket_ids, noise=reopen_noise),
    rate_case("exec.on_time_rate", "department", RATE_95, on_time, task_ids, noise=on_time_noise),
    rate_case("exec.outcome_shortfall", "department", RATE_90, outcome, task_ids, noise=outcome_noise),
    spend_case("exec.cost_overrun", "actual_cost", "budget_cost", OVERRUN, (1900.0, 20.0, WARN), over=True),
    spend_case("exec.hours_overrun", "actual_hours", "budget_hours", OVERRUN, (1900.0, 20.0, WARN), over=True),
    spend_case("exec.idle_resources", "actual_hours", "budget_hours", IDLE, (1900.0, 1.0, PASS), over=False),
    rate_case("plan.completion_rate", "department", COMPLETION_90, completion, target_ids, noise=completion_noise,
              period=QUARTER, now=QUARTER_NOW),
]


@pytest.mark.parametrize("case", AGGREGATE_CASES, ids=lambda case: case.id)
def test_aggregate_rule_grades_every_entity(engine, case: AggregateCase):
    data = Dataset()
    case.build(data)
    data.insert(engine)

    results = run_rule(engine, case.rule_id, case.entity_type, period=case.period, now=case.now)

    got = by_entity(results, case.entity_type)
    assert {entity: (r.outcome, r.severity) for entity, r in got.items()} == case.expected
    assert {entity: got[entity].population for entity in case.populations} == case.populations
    records = case.record_ids(data)
    for entity, result in got.items():
        samples = result.evidence["sample_ids"]
        if result.outcome is not Outcome.FAILED:
            assert samples == [], entity
            continue
        offending = {rid for rid in records if rid.startswith(f"{entity}-") and "-bad-" in rid}
        assert set(samples) <= offending, entity
        assert len(samples) == len(set(samples)) == min(20, len(offending)), entity


def test_grading_facts_of_a_rate_rule(engine):
    """Observed, target, population and counts of one department, and the company roll-up."""
    data = Dataset()
    for entity, n, k in (("D1", 100, 85), ("D2", 50, 50)):
        for i in range(n):
            satisfaction(data, f"{entity}-{'ok' if i < k else 'bad'}-{i:03d}", {"department_id": entity}, i < k, i)
    data.insert(engine)

    results = run_rule(engine, "cs.satisfaction_rate", "department")

    d1 = by_entity(results)["D1"]
    assert (d1.observed, d1.target, d1.population, d1.department_id) == (0.85, 0.90, 100, "D1")
    assert d1.evidence["counts"] == {"numerator": 85, "denominator": 100, "failures": 15}
    [company] = company_results(results)
    assert (company.entity_id, company.population, company.observed) == ("company", 150, 0.9)
    assert company.outcome is Outcome.WARNING and not company.facts.get("rollup")


# --- no ratings, period boundaries -------------------------------------------------------------

def test_no_ratings_at_all_is_insufficient_data_not_a_problem(engine):
    data = Dataset()
    for i in range(100):
        data.ticket(f"T{i:03d}", ("D1", "D2")[i % 2], ("A1", "A2")[i % 2], satisfaction=None)
    data.insert(engine)

    results = run_rule(engine, "cs.satisfaction_rate")

    assert {(r.entity_type, r.entity_id): r.outcome for r in results} == {
        ("department", "D1"): Outcome.INSUFFICIENT_DATA, ("department", "D2"): Outcome.INSUFFICIENT_DATA,
        ("agent", "A1"): Outcome.INSUFFICIENT_DATA, ("agent", "A2"): Outcome.INSUFFICIENT_DATA,
        ("company", "company"): Outcome.INSUFFICIENT_DATA,
    }
    assert all(r.severity is None and r.observed is None and r.population == 0 for r in results)
    assert all(r.evidence["sample_ids"] == [] for r in results)


def test_no_complaints_rated_is_insufficient_data(engine):
    data = Dataset()
    for i in range(40):
        data.ticket(f"T{i:03d}", "D1", kind="complaint", satisfaction=None)
        data.ticket(f"C{i:03d}", "D1", kind="consultation", satisfaction=1)
    data.insert(engine)

    [d1] = by_entity(run_rule(engine, "cs.complaint_satisfaction_rate")).values()

    assert (d1.outcome, d1.severity, d1.population) == (Outcome.INSUFFICIENT_DATA, None, 0)


def test_a_ticket_opened_at_the_period_start_is_inside_and_at_its_end_outside(engine):
    data = Dataset()
    data.ticket("start", "D1", opened_at=datetime(2026, 10, 1))
    for i in range(19):
        data.ticket(f"mid-{i:02d}", "D1")
    for i in range(5):  # unhappy, but not in October
        data.ticket(f"end-{i}", "D1", opened_at=MONTH_END, satisfaction=1)
        data.ticket(f"before-{i}", "D1", opened_at=SEPT_LAST_SECOND, satisfaction=1)
    data.insert(engine)

    d1 = by_entity(run_rule(engine, "cs.satisfaction_rate", "department"))["D1"]

    # Without the ticket at the start: 19, insufficient; with those at the end: 20 of 25, failed.
    assert (d1.outcome, d1.population, d1.observed) == (Outcome.PASSED, 20, 1.0)


def test_a_task_completed_at_the_period_end_belongs_to_the_next_period(engine):
    data = Dataset()
    for i in range(20):
        data.task(f"in-{i:02d}", "D1", actual_cost=100.0, completed_at=datetime(2026, 10, 1) + timedelta(hours=i))
        data.task(f"out-{i:02d}", "D1", actual_cost=500.0, completed_at=MONTH_END)
    data.insert(engine)

    d1 = by_entity(run_rule(engine, "exec.cost_overrun", "department"))["D1"]

    assert (d1.outcome, d1.population, d1.observed) == (Outcome.PASSED, 20, 1.0)


# --- SLA and follow-up windows end inclusively -------------------------------------------------

def test_a_first_response_exactly_at_the_sla_is_in_time(engine):
    """Phone and chat: 1 h; email and web: 24 h; both limits included (audit-rules.md section 4)."""
    data = Dataset()
    for i in range(20):
        opened = MID_MONTH + timedelta(minutes=7 * i, seconds=13 * i)
        channel, sla = (("phone", timedelta(hours=1)), ("chat", timedelta(hours=1)),
                        ("email", timedelta(hours=24)), ("web", timedelta(hours=24)))[i % 4]
        data.ticket(f"T{i:02d}", "D1", channel=channel, opened_at=opened, first_response_at=opened + sla)
    data.insert(engine)

    d1 = by_entity(run_rule(engine, "cs.first_response_rate", "department"))["D1"]

    assert (d1.outcome, d1.observed, d1.evidence["sample_ids"]) == (Outcome.PASSED, 1.0, [])


def test_a_follow_up_exactly_7_days_after_resolution_counts(engine):
    data = Dataset()
    for i in range(20):
        resolved = MID_MONTH + timedelta(hours=1, minutes=11 * i, seconds=7 * i)
        data.ticket(f"T{i:02d}", "D1", resolved_at=resolved, revisited_at=resolved + timedelta(days=7))
    data.insert(engine)

    d1 = by_entity(run_rule(engine, "cs.revisit_rate", "department"))["D1"]

    assert (d1.outcome, d1.observed, d1.evidence["sample_ids"]) == (Outcome.PASSED, 1.0, [])


# --- record rules ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordCase:
    """A per-record rule: the failed entities with their severity; nothing else may fail."""

    rule_id: str
    entity_type: str
    build: Callable[[Dataset], None]
    expected: dict[str, Severity]
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    examined: int | None = None
    period: str = MONTH
    now: datetime = MONTH_NOW

    @property
    def id(self) -> str:
        return f"{self.rule_id}[{self.entity_type}]"


GENERAL, IMPORTANT, MAJOR = Severity.GENERAL, Severity.IMPORTANT, Severity.MAJOR


def directory(data: Dataset) -> None:
    """Departments with heads, and staff of every role that approves plans."""
    data.department("D1", head_id="H1")
    data.department("D2", head_id="H2")
    for staff_id, role in (("H1", "manager"), ("H2", "manager"), ("O1", "specialist"), ("EXE", "executive"),
                           ("MGR", "manager"), ("DEP", "deputy_manager"), ("SUP", "supervisor")):
        data.staff(staff_id, "D1", role)


def low_reviews(data: Dataset, column: str = "attitude_score") -> None:
    """One review below 60 on a ticket is a general problem on that ticket; 60 itself is fine.
    The other QA score is low throughout: each rule reads its own."""
    other = "resolution_score" if column == "attitude_score" else "attitude_score"
    for ticket_id, scores in (("T-59", [59.9]), ("T-two", [40.0, 55.0]), ("T-mixed", [95.0, 30.0]),
                              ("T-60", [60.0]), ("T-ok", [90.0, 85.0])):
        data.ticket(ticket_id, "D1", "A1")
        for n, score in enumerate(scores):
            data.review(f"R{ticket_id[1:]}-{n}", ticket_id, **{column: score, other: 5.0})
    data.ticket("T-sept", "D1", "A1")
    data.review("R-sept", "T-sept", **{column: 10.0}, reviewed_at=SEPT_LAST_SECOND)


def low_resolution_reviews(data: Dataset) -> None:
    low_reviews(data, "resolution_score")


def overdue_tasks(data: Dataset) -> None:
    """Done more than 3 days late in the month, or open past the deadline at its end (1 Nov)."""
    directory(data)

    def done(task_id: str, due: datetime, late: timedelta, priority: str = "normal") -> None:
        data.task(task_id, "D1", priority=priority, due_at=due, started_at=due - timedelta(days=5),
                  completed_at=due + late)

    def still_open(task_id: str, due: datetime, priority: str = "normal", status: str = "in_progress") -> None:
        data.task(task_id, "D1", priority=priority, due_at=due, started_at=None, completed_at=None, status=status)

    oct1 = datetime(2026, 10, 1)
    done("late4", datetime(2026, 10, 10), timedelta(days=4))
    done("grace3", datetime(2026, 10, 10), timedelta(days=3))  # within the grace of 3 days
    done("late14", oct1, timedelta(days=14))
    done("late15", oct1, timedelta(days=15))
    done("high4", datetime(2026, 10, 10), timedelta(days=4), "high")
    done("crit-done30", datetime(2026, 9, 20), timedelta(days=30), "critical")
    done("crit-done31", datetime(2026, 9, 20), timedelta(days=31), "critical")
    still_open("open14", datetime(2026, 10, 18))
    still_open("open15", datetime(2026, 10, 17), status="not_started")
    still_open("crit10", datetime(2026, 10, 22), "critical")
    still_open("crit30", datetime(2026, 10, 2), "critical")
    still_open("crit31", oct1, "critical")
    still_open("high-old", datetime(2026, 9, 1), "high")  # due before the month, still open
    # Compliant: on time, cancelled, not yet due, late but done before the month, due at its end.
    done("ontime", datetime(2026, 10, 10), -timedelta(days=1))
    still_open("cancelled", oct1, "critical", status="cancelled")
    still_open("future", datetime(2026, 11, 5), "critical")
    still_open("due-at-end", MONTH_END, "critical")
    done("done-sept", datetime(2026, 9, 1), timedelta(days=20), "critical")


def overrun_tasks(actual: str, budget: str, unit: float) -> Callable[[Dataset], None]:
    """Above 150% of the budget is a general problem on the task; exactly 150% is fine."""

    def build(data: Dataset) -> None:
        directory(data)
        data.task("t151", "D1", **{budget: 100 * unit, actual: 151 * unit})
        data.task("t1000", "D2", **{budget: 10 * unit, actual: 100 * unit})
        data.task("t150", "D1", **{budget: 100 * unit, actual: 150 * unit})
        data.task("t100", "D1", **{budget: 100 * unit, actual: 100 * unit})
        data.task("open", "D1", status="in_progress", completed_at=None, **{budget: unit, actual: 300 * unit})
        data.task("sept", "D1", completed_at=SEPT_LAST_SECOND, **{budget: unit, actual: 300 * unit})
        data.task("no-budget", "D1", **{budget: 0.0, actual: 300 * unit})
        data.task("null-budget", "D1", **{budget: None, actual: 300 * unit})

    return build


def process_tasks(data: Dataset) -> None:
    directory(data)
    data.task("no-start", "D1", started_at=None)
    data.task("backwards", "D1", started_at=datetime(2026, 10, 19), completed_at=datetime(2026, 10, 18))
    data.task("no-owner", "D1", owner_id=None)
    data.task("ok", "D1")
    data.task("same-time", "D1", started_at=datetime(2026, 10, 18), completed_at=datetime(2026, 10, 18))
    data.task("open-no-start", "D1", status="in_progress", started_at=None, completed_at=None, owner_id=None)
    data.task("sept-no-start", "D1", started_at=None, owner_id=None, completed_at=SEPT_LAST_SECOND)


def late_plans(data: Dataset) -> None:
    """Plans due in 2026Q3, submitted late or not by its end; important when annual or > 14 days."""
    def plan(plan_id: str, due: datetime, submitted: datetime | None, level: str = "monthly") -> None:
        data.plan(plan_id, "D1", level=level, due_at=due, submitted_at=submitted,
                  approved_by=None, approved_at=None, status="submitted" if submitted else "draft")

    plan("late5", datetime(2026, 8, 31), datetime(2026, 9, 5))
    plan("late14", datetime(2026, 8, 1), datetime(2026, 8, 15))
    plan("late15", datetime(2026, 8, 1), datetime(2026, 8, 16))
    plan("annual1", datetime(2026, 9, 1), datetime(2026, 9, 2), "annual")
    plan("unsubmitted11", datetime(2026, 9, 20), None)
    plan("unsubmitted21", datetime(2026, 9, 10), None)
    plan("ontime", datetime(2026, 8, 31), datetime(2026, 8, 25), "annual")
    plan("at-due", datetime(2026, 8, 31), datetime(2026, 8, 31))
    plan("due-before", datetime(2026, 6, 30), datetime(2026, 7, 20))
    plan("due-at-end", QUARTER_END, None)


def unapproved_plans(data: Dataset) -> None:
    """Not approved more than 10 days after submission (cutoff 21 Sep), or by a wrong role."""
    directory(data)

    def plan(plan_id: str, level: str = "monthly", *, submitted: datetime = datetime(2026, 8, 25),
             by: str | None = "MGR", at: datetime | None = datetime(2026, 8, 28), status: str = "approved") -> None:
        data.plan(plan_id, "D1", level=level, submitted_at=submitted, approved_by=by, approved_at=at, status=status)

    plan("waiting", submitted=datetime(2026, 9, 20, 23), by=None, at=None, status="submitted")
    plan("approved-after", submitted=datetime(2026, 9, 1), at=datetime(2026, 10, 3))
    plan("annual-by-manager", "annual")
    plan("quarterly-by-supervisor", "quarterly", by="SUP")
    plan("monthly-by-deputy", by="DEP")
    plan("unknown-approver", by="GHOST")
    plan("recent", submitted=datetime(2026, 9, 21), by=None, at=None, status="submitted")  # exactly 10 days
    plan("rejected", submitted=datetime(2026, 9, 1), by=None, at=None, status="rejected")
    plan("annual-by-executive", "annual", by="EXE")
    plan("quarterly-by-manager", "quarterly")
    plan("quarterly-by-executive", "quarterly", by="EXE")
    plan("monthly-by-manager")
    plan("monthly-by-executive", by="EXE")
    plan("old-wrong", "annual", submitted=datetime(2026, 6, 1), at=datetime(2026, 6, 5))


def undecomposed_plans(data: Dataset) -> None:
    """Approved monthly plans for July-September need tasks, every one with an owner."""
    def plan(plan_id: str, period: str, tasks: tuple[str | None, ...], level: str = "monthly",
             status: str = "approved") -> None:
        approved = status in ("approved", "closed")
        data.plan(plan_id, "D1", level=level, period=period, status=status,
                  approved_by="MGR" if approved else None, approved_at=datetime(2026, 6, 28) if approved else None)
        for n, owner in enumerate(tasks):
            data.task(f"{plan_id}-t{n}", "D1", plan_id=plan_id, owner_id=owner)

    plan("no-tasks", "2026-08", ())
    plan("ownerless", "2026-07", ("O1", None))
    plan("closed-no-tasks", "2026-09", (), status="closed")
    plan("decomposed", "2026-09", ("O1", "O1"))
    plan("draft", "2026-08", (), status="draft")
    plan("october", "2026-10", ())
    plan("june", "2026-06", ())
    plan("quarterly", "2026Q3", (), level="quarterly")


def plan_targets(data: Dataset) -> None:
    """Within -20%..+50% of the baseline, in the better direction; a target needs a baseline."""
    data.plan("P1", "D1")
    data.plan("P-old", "D1", submitted_at=datetime(2026, 6, 20))
    for metric, baseline, target, higher in (
            ("up50", 100.0, 150.0, True), ("up51", 100.0, 151.0, True), ("down20", 100.0, 80.0, True),
            ("down21", 100.0, 79.0, True), ("low-down50", 100.0, 50.0, False), ("low-down51", 100.0, 49.0, False),
            ("low-up20", 100.0, 120.0, False), ("low-up21", 100.0, 121.0, False), ("no-baseline", None, 5.0, True)):
        data.target("P1", metric, baseline=baseline, target=target, higher_is_better=higher)
    data.target("P-old", "no-baseline", baseline=None)


def research_plans(data: Dataset) -> None:
    data.plan("annual-none", "D1", level="annual", market_research=None)
    data.plan("quarterly-blank", "D1", level="quarterly", market_research="   ")
    data.plan("annual-ok", "D1", level="annual")
    data.plan("monthly-none", "D1", market_research=None)
    data.plan("annual-old", "D1", level="annual", market_research=None, submitted_at=datetime(2026, 6, 20))


def signoff_plans(data: Dataset) -> None:
    """Approved 28 Aug: a required sign-off must exist and come no later than the approval."""
    for plan_id in ("missing", "after", "two-bad", "ok", "at-approval", "optional", "unapproved"):
        data.plan(plan_id, "D1")
    data.plan("old", "D1", submitted_at=datetime(2026, 6, 20))
    data.rows["plans"][-2].update(approved_by=None, approved_at=None, status="submitted")  # "unapproved"
    data.signoff("missing", "SALES", signed_by=None, signed_at=None)
    data.signoff("after", "FIN", signed_at=datetime(2026, 8, 29))
    data.signoff("two-bad", "FIN", signed_at=datetime(2026, 8, 29))
    data.signoff("two-bad", "SALES", signed_by=None, signed_at=None)
    data.signoff("ok", "FIN")
    data.signoff("at-approval", "FIN", signed_at=datetime(2026, 8, 28))
    data.signoff("optional", "FIN", required=False, signed_by=None, signed_at=None)
    data.signoff("unapproved", "FIN", signed_at=datetime(2026, 9, 10))
    data.signoff("old", "FIN", signed_by=None, signed_at=None)


def adjustments(data: Dataset) -> None:
    data.plan("P1", "D1")
    data.adjustment("no-reason", "P1", reason=None)
    data.adjustment("blank-reason", "P1", reason="  ")
    data.adjustment("not-approved", "P1", approved_by=None, approved_at=None)
    data.adjustment("approved-late", "P1", approved_at=datetime(2026, 8, 16))
    data.adjustment("ok", "P1")
    data.adjustment("approved-at-effect", "P1", approved_at=datetime(2026, 8, 15))
    data.adjustment("old", "P1", reason=None, requested_at=datetime(2026, 6, 20))


def late_reports(data: Dataset) -> None:
    def report(report_id: str, due: datetime, submitted: datetime | None) -> None:
        data.report(report_id, "D1", due_at=due, submitted_at=submitted)

    report("late1", datetime(2026, 9, 10), datetime(2026, 9, 11))
    report("late14", datetime(2026, 8, 1), datetime(2026, 8, 15))
    report("late15", datetime(2026, 8, 1), datetime(2026, 8, 16))
    report("unsubmitted11", datetime(2026, 9, 20), None)
    report("unsubmitted30", datetime(2026, 9, 1), None)
    report("ontime", datetime(2026, 9, 10), datetime(2026, 9, 8))
    report("at-due", datetime(2026, 9, 10), datetime(2026, 9, 10))
    report("due-before", datetime(2026, 6, 30), datetime(2026, 7, 30))
    report("due-at-end", QUARTER_END, None)


def incomplete_reports(data: Dataset) -> None:
    data.report("no-methods", "D1", methods=None)
    data.report("blank-recommendations", "D1", recommendations=" ")
    data.report("complete", "D1")
    data.report("old", "D1", methods=None, submitted_at=datetime(2026, 6, 20))
    data.report("unsubmitted", "D1", methods=None, submitted_at=None)


def unreviewed_reports(data: Dataset) -> None:
    data.report("unreviewed", "D1", reviewed_by=None)
    data.report("blank-reviewer", "D1", reviewed_by="")
    data.report("reviewed", "D1")
    data.report("old", "D1", reviewed_by=None, submitted_at=datetime(2026, 6, 20))


AUG = datetime(2026, 8, 12, 9, 0)


def stated_figures(data: Dataset) -> None:
    """August: D1 has 200 tickets (40 complaints; 90 of 100 rated satisfied; 190 answered in SLA)
    and 40 tasks due (30 on time); D2 has 100 tickets, none rated; D3 nothing. September: 50 more
    D1 tickets. Counts may be 0.5% off, rates 0.5 points; beyond 10% (10 points) is major."""
    directory(data)
    data.department("D3")
    for i in range(200):
        data.ticket(f"D1-{i:03d}", "D1", kind="complaint" if i < 40 else "consultation", opened_at=AUG,
                    satisfaction=(5 if i < 90 else 2) if i < 100 else None,
                    first_response_at=AUG + (timedelta(hours=3) if i >= 190 else timedelta(minutes=5)))
    for i in range(100):
        data.ticket(f"D2-{i:03d}", "D2", channel="email", opened_at=AUG, satisfaction=None,
                    first_response_at=AUG + timedelta(hours=23))
    for i in range(50):
        data.ticket(f"D1-sept-{i:02d}", "D1", opened_at=datetime(2026, 9, 3), satisfaction=1)
    for i in range(45):
        due = datetime(2026, 8, 20)
        data.task(f"task-{i:02d}", "D1", due_at=due, started_at=datetime(2026, 8, 1),
                  completed_at=due if i < 30 else due + timedelta(days=2),
                  status="cancelled" if i >= 40 else "done")
    figures = {
        # correct, or within the tolerance
        "ok": [("ticket_count", "D1", 200), ("complaint_count", "D1", 40), ("satisfaction_rate", "D1", 0.9),
               ("first_response_rate", "D1", 0.95), ("task_count", "D1", 40), ("task_on_time_rate", "D1", 0.75),
               ("ticket_count", None, 300), ("satisfaction_rate", None, 0.9),
               ("first_response_rate", None, 290 / 300), ("ticket_count", "D3", 0)],
        "edge": [("ticket_count", "D1", 201), ("satisfaction_rate", "D1", 0.905), ("task_on_time_rate", "D1", 0.745),
                 ("task_count", "D1", 40.2)],
        # just beyond the tolerance, and exactly 10% (10 points) off: important
        "important": [("ticket_count", "D1", 202), ("satisfaction_rate", "D1", 0.906), ("task_count", "D1", 44),
                      ("first_response_rate", "D1", 0.85)],
        # beyond 10% (10 points): major
        "major": [("ticket_count", "D1", 221), ("satisfaction_rate", "D1", 0.79), ("complaint_count", None, 50),
                  ("task_on_time_rate", "D1", 0.5), ("ticket_count", "D3", 3)],
        # no rating in D2: nothing to recompute a rate against
        "unrated": [("satisfaction_rate", "D2", 0.5), ("ticket_count", "D2", 100)],
    }
    for group, rows in figures.items():
        for metric, department, value in rows:
            report_id = f"{group}-{department or 'company'}"  # one report per scope: see the last test
            if not any(r["report_id"] == report_id for r in data.rows["analysis_reports"]):
                data.report(report_id, "D1")
            data.reported(report_id, metric, value, department)
    data.report("quarter", "D1", period="2026Q3")
    data.reported("quarter", "ticket_count", 250, "D1", period="2026Q3")  # August 200 + September 50
    data.reported("quarter", "complaint_count", 41, "D1", period="2026Q3")  # 2.5% off
    data.report("old", "D1", submitted_at=datetime(2026, 6, 20))
    data.reported("old", "ticket_count", 999, "D1")


RECORD_CASES = [
    RecordCase("cs.qa_attitude", "ticket", low_reviews, {"T-59": GENERAL, "T-two": GENERAL, "T-mixed": GENERAL},
               facts={"T-59": {"score": 59.9, "agent_id": "A1", "review_id": "R-59-0"}}, examined=8),
    RecordCase("cs.qa_resolution", "ticket", low_resolution_reviews,
               {"T-59": GENERAL, "T-two": GENERAL, "T-mixed": GENERAL},
               facts={"T-59": {"score": 59.9, "agent_id": "A1", "review_id": "R-59-0"}}, examined=8),
    RecordCase("exec.overdue_task", "task", overdue_tasks, {
        "late4": GENERAL, "late14": GENERAL, "late15": IMPORTANT, "high4": IMPORTANT,
        "crit-done30": IMPORTANT, "crit-done31": MAJOR, "open14": GENERAL, "open15": IMPORTANT,
        "crit10": GENERAL, "crit30": IMPORTANT, "crit31": MAJOR, "high-old": IMPORTANT,
    }, facts={
        "late14": {"days_late": 14.0, "status": "done"}, "late15": {"days_late": 15.0},
        "crit30": {"days_late": 30.0, "priority": "critical"}, "crit31": {"days_late": 31.0},
        "crit-done31": {"days_late": 31.0}, "high-old": {"days_late": 61.0, "owner_id": "O1"},
    }),
    RecordCase("exec.cost_overrun", "task", overrun_tasks("actual_cost", "budget_cost", 1.0),
               {"t151": GENERAL, "t1000": GENERAL},
               facts={"t151": {"ratio": 1.51, "actual": 151.0, "budget": 100.0},
                      "t1000": {"ratio": 10.0, "department_id": "D2"}}, examined=4),
    RecordCase("exec.hours_overrun", "task", overrun_tasks("actual_hours", "budget_hours", 0.5),
               {"t151": GENERAL, "t1000": GENERAL}, facts={"t151": {"ratio": 1.51}}, examined=4),
    RecordCase("exec.process_violation", "task", process_tasks,
               {"no-start": GENERAL, "backwards": GENERAL, "no-owner": GENERAL},
               facts={"no-start": {"reason": "not_started"}, "backwards": {"reason": "completed_before_started"},
                      "no-owner": {"reason": "no_owner"}}, examined=5),
    RecordCase("plan.late_submission", "plan", late_plans, {
        "late5": GENERAL, "late14": GENERAL, "late15": IMPORTANT, "annual1": IMPORTANT,
        "unsubmitted11": GENERAL, "unsubmitted21": IMPORTANT,
    }, facts={
        "late14": {"days_late": 14.0}, "late15": {"days_late": 15.0}, "unsubmitted11": {"days_late": 11.0},
        "annual1": {"level": "annual", "days_late": 1.0},
    }, examined=8, period=QUARTER, now=QUARTER_NOW),
    RecordCase("plan.unapproved", "plan", unapproved_plans, {
        "waiting": GENERAL, "approved-after": GENERAL, "annual-by-manager": GENERAL,
        "quarterly-by-supervisor": GENERAL, "monthly-by-deputy": GENERAL, "unknown-approver": GENERAL,
    }, facts={
        "waiting": {"reason": "not_approved"}, "approved-after": {"reason": "not_approved"},
        "annual-by-manager": {"reason": "approver_not_allowed", "approver_role": "manager"},
        "quarterly-by-supervisor": {"reason": "approver_not_allowed", "approver_role": "supervisor"},
        "monthly-by-deputy": {"reason": "approver_not_allowed", "approver_role": "deputy_manager"},
    }, period=QUARTER, now=QUARTER_NOW),
    RecordCase("plan.not_decomposed", "plan", undecomposed_plans,
               {"no-tasks": GENERAL, "ownerless": GENERAL, "closed-no-tasks": GENERAL},
               facts={"no-tasks": {"tasks": 0}, "ownerless": {"tasks": 2, "tasks_without_owner": 1}},
               examined=4, period=QUARTER, now=QUARTER_NOW),
    RecordCase("plan.target_unreasonable", "plan_target", plan_targets, {
        "P1/up51": GENERAL, "P1/down21": GENERAL, "P1/low-down51": GENERAL, "P1/low-up21": GENERAL,
        "P1/no-baseline": GENERAL,
    }, facts={
        "P1/up51": {"change": 0.51, "metric": "up51"}, "P1/down21": {"change": -0.21},
        "P1/low-down51": {"change": 0.51}, "P1/low-up21": {"change": -0.21},
        "P1/no-baseline": {"reason": "no_baseline"},
    }, examined=9, period=QUARTER, now=QUARTER_NOW),
    RecordCase("plan.missing_market_research", "plan", research_plans,
               {"annual-none": GENERAL, "quarterly-blank": GENERAL}, examined=3, period=QUARTER, now=QUARTER_NOW),
    RecordCase("plan.missing_signoff", "plan", signoff_plans,
               {"missing": GENERAL, "after": GENERAL, "two-bad": GENERAL},
               facts={"missing": {"collaborator": "SALES"}, "after": {"collaborator": "FIN"}},
               examined=7, period=QUARTER, now=QUARTER_NOW),
    RecordCase("plan.adjustment_unapproved", "adjustment", adjustments, {
        "no-reason": GENERAL, "blank-reason": GENERAL, "not-approved": GENERAL, "approved-late": GENERAL,
    }, facts={
        "no-reason": {"reason": "no_reason", "plan_id": "P1"}, "blank-reason": {"reason": "no_reason"},
        "not-approved": {"reason": "not_approved"}, "approved-late": {"reason": "approved_after_effective"},
    }, examined=6, period=QUARTER, now=QUARTER_NOW),
    RecordCase("data.report_late", "report", late_reports, {
        "late1": GENERAL, "late14": GENERAL, "late15": IMPORTANT, "unsubmitted11": GENERAL, "unsubmitted30": IMPORTANT,
    }, facts={
        "late14": {"days_late": 14.0}, "late15": {"days_late": 15.0}, "unsubmitted30": {"days_late": 30.0},
    }, examined=7, period=QUARTER, now=QUARTER_NOW),
    RecordCase("data.report_incomplete", "report", incomplete_reports,
               {"no-methods": GENERAL, "blank-recommendations": GENERAL},
               facts={"no-methods": {"reason": "no_methods"},
                      "blank-recommendations": {"reason": "no_recommendations"}},
               examined=3, period=QUARTER, now=QUARTER_NOW),
    RecordCase("data.report_unreviewed", "report", unreviewed_reports,
               {"unreviewed": GENERAL, "blank-reviewer": GENERAL}, examined=3, period=QUARTER, now=QUARTER_NOW),
    RecordCase("data.metric_mismatch", "reported_metric", stated_figures, {
        "important-D1/ticket_count/D1": IMPORTANT, "important-D1/satisfaction_rate/D1": IMPORTANT,
        "important-D1/task_count/D1": IMPORTANT, "important-D1/first_response_rate/D1": IMPORTANT,
        "quarter/complaint_count/D1": IMPORTANT,
        "major-D1/ticket_count/D1": MAJOR, "major-D1/satisfaction_rate/D1": MAJOR,
        "major-company/complaint_count/company": MAJOR, "major-D1/task_on_time_rate/D1": MAJOR,
        "major-D3/ticket_count/D3": MAJOR,
    }, facts={
        "important-D1/ticket_count/D1": {"reported": 202.0, "actual": 200.0, "deviation": 0.01},
        "important-D1/task_count/D1": {"deviation": 0.1},
        "major-D1/satisfaction_rate/D1": {"actual": 0.9, "deviation": 0.11},
        "major-company/complaint_count/company": {"actual": 40.0, "scope": None, "department_id": "D1"},
        "major-D3/ticket_count/D3": {"actual": 0.0, "deviation": 3.0},
    }, examined=27, period=QUARTER, now=QUARTER_NOW),
]


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float):
        return actual is not None and actual == pytest.approx(expected, abs=1e-6)
    return actual == expected


@pytest.mark.parametrize("case", RECORD_CASES, ids=lambda case: case.id)
def test_record_rule_flags_each_offending_record(engine, case: RecordCase):
    data = Dataset()
    case.build(data)
    data.insert(engine)

    results = run_rule(engine, case.rule_id, case.entity_type, period=case.period, now=case.now)

    got = by_entity(results, case.entity_type)
    assert {entity: r.severity for entity, r in got.items()} == case.expected
    assert all(r.outcome is Outcome.FAILED for r in got.values())
    for entity, facts in case.facts.items():
        wrong = {key: got[entity].facts.get(key) for key, value in facts.items()
                 if not _same(got[entity].facts.get(key), value)}
        assert not wrong, f"{entity}: {wrong}"
    for entity, result in got.items():
        assert result.evidence["sample_ids"][0] == entity
        assert len(result.evidence["sample_ids"]) <= 20
    [rollup] = [r for r in company_results(results) if r.entity_id == f"company/{case.entity_type}"]
    assert rollup.facts["violations"] == len(case.expected)
    assert rollup.outcome is (Outcome.FAILED if case.expected else Outcome.PASSED)
    if case.examined is not None:
        assert rollup.population == case.examined


def test_a_ticket_with_two_low_reviews_cites_both(engine):
    data = Dataset()
    low_reviews(data)
    data.insert(engine)

    got = by_entity(run_rule(engine, "cs.qa_attitude", "ticket"))

    assert got["T-two"].evidence["sample_ids"] == ["T-two", "R-two-0", "R-two-1"]
    assert got["T-two"].facts["score"] == 40.0  # the worst row's facts; every row listed
    assert [row["review_id"] for row in got["T-two"].facts["rows"]] == ["R-two-0", "R-two-1"]


def test_a_task_without_owner_goes_to_the_department_head(engine):
    data = Dataset()
    process_tasks(data)
    data.insert(engine)

    got = by_entity(run_rule(engine, "exec.process_violation"))

    assert (got["no-owner"].owner_id, got["no-start"].owner_id) == ("H1", "O1")


def test_a_record_rule_with_nothing_wrong_passes_its_roll_up(engine):
    data = Dataset()
    process_tasks(data)
    data.rows["tasks"] = [row for row in data.rows["tasks"] if row["task_id"] in ("ok", "same-time")]
    data.insert(engine)

    results = run_rule(engine, "exec.process_violation")

    assert [(r.entity_id, r.outcome, r.population) for r in results] == [("company/task", Outcome.PASSED, 2)]


def test_an_overdue_task_done_only_after_the_period_was_open_at_its_end(engine):
    """Due 10 Oct, done 1 Nov 12:00: at the end of October it was 22 days late and not done."""
    data = Dataset()
    data.task("done-after-end", "D1", due_at=datetime(2026, 10, 10), completed_at=datetime(2026, 11, 1, 12))
    data.task("done-late-in-november", "D1", due_at=datetime(2026, 11, 2), completed_at=datetime(2026, 11, 20))
    data.insert(engine)

    # The audit re-run later (or run on 2 Nov, after the task was closed) must see the same.
    got = by_entity(run_rule(engine, "exec.overdue_task", now=datetime(2026, 12, 1)))

    assert {entity: r.severity for entity, r in got.items()} == {"done-after-end": Severity.IMPORTANT}
    assert got["done-after-end"].facts["days_late"] == pytest.approx(22.0)


def test_metric_mismatch_runs_when_the_first_response_rule_is_disabled(engine):
    """The SLA hours come from cs.first_response_rate; a company may switch that rule off."""
    defaults = load_config(None).thresholds.model_dump()
    rules = rules_with(Thresholds.model_validate(
        defaults | {"rules": {"cs.first_response_rate": {"enabled": False}}}))
    assert not any(rule.rule_id == "cs.first_response_rate" for rule in rules)
    data = Dataset()
    stated_figures(data)
    data.insert(engine)

    got = by_entity(run_rule(engine, "data.metric_mismatch", period=QUARTER, now=QUARTER_NOW, rules=rules))

    assert got["major-D1/ticket_count/D1"].severity is Severity.MAJOR
    assert got["important-D1/first_response_rate/D1"].severity is Severity.IMPORTANT
    assert "ok-D1/first_response_rate/D1" not in got


def test_metric_mismatch_without_the_tickets_table_is_reported_not_raised(engine):
    """The re-computation reads tickets and tasks: a source without them cannot run the rule, and
    the result must say so (like any rule whose tables are missing) instead of a database error."""
    present = {"departments", "staff", "analysis_reports", "reported_metrics"}
    data = Dataset()
    stated_figures(data)
    data.insert(engine, tables=present)

    results = run_rule(engine, "data.metric_mismatch", period=QUARTER, now=QUARTER_NOW, available=present)

    assert [(r.entity_id, r.outcome, r.facts.get("reason")) for r in results] == [
        ("company/reported_metric", Outcome.INSUFFICIENT_DATA, "missing table: tasks, tickets")]


def test_a_report_may_state_one_metric_for_several_departments(engine):
    """The contract's key of reported_metrics is report, metric and department (null: company)."""
    data = Dataset()
    stated_figures(data)
    data.reported("ok-D1", "ticket_count", 100, "D2")
    data.reported("ok-D1", "ticket_count", 300, None)
    data.insert(engine)

    got = by_entity(run_rule(engine, "data.metric_mismatch", period=QUARTER, now=QUARTER_NOW))

    assert not {entity for entity in got if entity.startswith("ok-D1/")}


def test_tickets_of_a_department_missing_from_the_departments_table_rate_no_phantom_department(engine):
    """500 tickets of XX9, which the departments table lacks: dq.reference's finding, not rate
    findings on a department that does not exist, and not part of the company's figure."""
    from opsaudit.checks.quality import run_data_quality
    from opsaudit.periods import parse_period
    from opsaudit.source import Source

    data = Dataset()
    data.department("D1")
    for i in range(100):
        satisfaction(data, f"D1-ok-{i:03d}", {"department_id": "D1"}, True, i)
    for i in range(500):
        satisfaction(data, f"XX9-bad-{i:03d}", {"department_id": "XX9"}, False, i)
    data.insert(engine)

    results = run_rule(engine, "cs.satisfaction_rate")

    assert set(by_entity(results, "department")) == {"D1"}
    assert not [r for r in results if r.department_id == "XX9"]
    [company] = company_results(results)
    assert (company.population, company.outcome) == (100, Outcome.PASSED)
    quality = run_data_quality(Source(engine), ["tickets"], parse_period(MONTH), now=MONTH_NOW)
    [unresolved] = [r for r in quality if (r.rule_id, r.entity_id) == ("dq.reference", "tickets.department_id")]
    assert unresolved.outcome is Outcome.FAILED and unresolved.facts["unexpected_count"] == 500


def test_an_enormous_note_reaches_the_evidence_cut_to_a_few_hundred_characters(engine):
    """A QA note of 200,000 characters: the samples of the compliance failure and the low review's
    facts keep 300 characters of it, ending with an ellipsis; the database cuts it."""
    from opsaudit.checks.sqlfuncs import ELLIPSIS, TEXT_LIMIT

    note = "很长的备注" * 40_000
    data = Dataset()
    for i in range(30):
        data.ticket(f"T{i:03d}", "D1", "A1")
        data.review(f"R{i:03d}", f"T{i:03d}", compliant=i >= 10, attitude_score=40.0 if i == 0 else 90.0,
                    notes=note if i < 10 else "ok")
    data.insert(engine)

    [compliance] = [r for r in run_rule(engine, "cs.qa_compliance", "department") if r.entity_id == "D1"]
    notes = compliance.evidence["samples"].records()
    assert notes and all(len(row["notes"]) == TEXT_LIMIT and row["notes"].endswith(ELLIPSIS) for row in notes)
    assert notes[0]["notes"] == note[:TEXT_LIMIT - 1] + ELLIPSIS
    low = by_entity(run_rule(engine, "cs.qa_attitude", "ticket"))["T000"]
    assert len(str(low.facts)) < 2 * TEXT_LIMIT + 500 and note[:TEXT_LIMIT - 1] + ELLIPSIS in str(low.facts)
