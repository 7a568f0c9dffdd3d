"""Attribute sampling for the weekly QA review: sizes, allocation, a re-performable draw, the store."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from opsaudit import contract
from opsaudit.checks.sampling import (
    SampleDraw,
    Stratum,
    attribute_sample_size,
    draw_sample,
    plan_sample,
    record_sample,
)
from opsaudit.config.models import Sampling, SourceMapping
from opsaudit.db import create_engine
from opsaudit.periods import week
from opsaudit.source import Source
from opsaudit.store import schema

WEEK = week(2026, 46)  # Monday 2026-11-09 .. 2026-11-16
MONDAY = WEEK.start
CHANNELS = ("phone", "chat", "email")


# --- sample sizes ----------------------------------------------------------------------------

@pytest.mark.parametrize(("confidence", "tolerable", "sizes"), [
    # AICPA Audit Sampling guide, tables A-1 (5% risk) and A-2 (10% risk); expected rate 0%,
    # 0.25%, 0.5%, ... in steps of 0.25%.
    (0.95, 0.05, [59, 93, 93, 93, 93, 124, 124, 153, 181, 208]),
    (0.95, 0.04, [74, 117, 117, 117, 156, 156, 192, 227]),
    (0.95, 0.03, [99, 157, 157, 208]),
    (0.95, 0.08, [36, 58, 58, 58, 58, 58, 58, 77, 77, 77, 77, 95, 95]),
    (0.95, 0.10, [29, 46, 46, 46, 46, 46, 46, 46, 46, 61, 61, 61, 61]),
    (0.90, 0.05, [45, 77, 77, 77, 77, 77, 105, 105, 132, 132, 158, 209]),
    (0.90, 0.10, [22, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 52, 52]),
])
def test_sizes_match_the_aicpa_table(confidence, tolerable, sizes):
    expected_rates = [step * 0.0025 for step in range(len(sizes))]
    assert [attribute_sample_size(confidence, tolerable, rate) for rate in expected_rates] == sizes


def test_the_rules_three_sizes():
    assert [attribute_sample_size(0.95, 0.05, rate) for rate in (0.0, 0.01, 0.02)] == [59, 93, 181]


def test_expected_deviations_are_rounded_up_exactly():
    # 58 * 1.75% = 1.015 deviations: rounded up to 2, which needs 77 (8% tolerable); a float
    # product like 100 * 0.07 = 7.000000000000001 must not round up to 8.
    assert attribute_sample_size(0.95, 0.08, 0.0175) == 77
    assert attribute_sample_size(0.95, 0.09, 0.02) == 68


@pytest.mark.parametrize(("population", "size"), [(0, 0), (1, 1), (5, 5), (50, 33), (93, 47), (100, 49),
                                                  (1000, 86), (100_000, 93)])
def test_finite_population_correction(population, size):
    assert attribute_sample_size(0.95, 0.05, 0.01, population) == size


def test_corrected_size_never_exceeds_the_population_and_grows_with_it():
    sizes = [attribute_sample_size(0.95, 0.05, 0.01, n) for n in range(0, 400)]
    assert all(size <= population for population, size in enumerate(sizes))
    assert sizes == sorted(sizes)


@pytest.mark.parametrize(("confidence", "tolerable", "expected"), [
    (1.0, 0.05, 0.01), (0.95, 0.0, 0.0), (0.95, 0.05, 0.05), (0.95, 0.05, -0.01), (0.95, 0.05, 0.0499),
])
def test_impossible_parameters_are_refused(confidence, tolerable, expected):
    with pytest.raises(ValueError):
        attribute_sample_size(confidence, tolerable, expected)


# --- allocation ------------------------------------------------------------------------------

def _stratum(agent: str | None, channel: str, population: int, active: bool = True, department: str = "D1"):
    return Stratum(department, agent, channel, population, active and agent is not None)


def test_allocation_is_proportional_and_sums_to_the_size():
    strata = [_stratum("A1", "phone", 600), _stratum("A1", "chat", 300), _stratum("A2", "phone", 100),
              _stratum(None, "email", 1000)]
    plan = plan_sample(strata, Sampling())
    (department,) = plan.departments
    assert (department.population, department.planned_size, department.size) == (2000, 89, 89)
    sizes = {(a.stratum.agent_id, a.stratum.channel): a.size for a in plan.allocations}
    # Shares 26.7, 13.35, 4.45 and 44.5: floors 87, the two largest remainders get one more.
    assert sizes == {("A1", "phone"): 27, ("A1", "chat"): 13, ("A2", "phone"): 4, (None, "email"): 45}


def test_equal_remainders_go_to_the_first_strata_in_order():
    strata = [_stratum("A2", "chat", 10), _stratum("A1", "chat", 10), _stratum(None, "chat", 10)]
    plan = plan_sample(strata, Sampling(min_per_agent=0))
    # 23 over three equal strata: 7.67 each; the unassigned stratum sorts first, then A1.
    assert [(a.stratum.agent_id, a.size) for a in plan.allocations] == [(None, 8), ("A1", 8), ("A2", 7)]


def test_every_active_agent_gets_the_minimum_even_beyond_the_planned_size():
    strata = [_stratum(f"A{i:02d}", "chat", 1) for i in range(70)]
    strata.append(_stratum("GONE", "chat", 5, active=False))
    plan = plan_sample(strata, Sampling(min_per_agent=1))
    (department,) = plan.departments
    assert department.planned_size == attribute_sample_size(0.95, 0.05, 0.01, 75) == 42
    assert department.size == 70
    assert all(a.size == 1 for a in plan.allocations if a.stratum.active_agent)
    assert next(a.size for a in plan.allocations if a.stratum.agent_id == "GONE") == 0


def test_the_minimum_is_capped_by_the_agents_tickets():
    strata = [_stratum("A1", "chat", 2), _stratum("A2", "chat", 500)]
    plan = plan_sample(strata, Sampling(min_per_agent=3))
    sizes = {a.stratum.agent_id: a.size for a in plan.allocations}
    assert sizes["A1"] == 2
    assert sum(sizes.values()) == plan.departments[0].size


def test_departments_are_planned_separately():
    strata = [_stratum("A1", "chat", 30, department="D1"), _stratum("B1", "chat", 5000, department="D2")]
    plan = plan_sample(strata, Sampling())
    assert [(d.department_id, d.size) for d in plan.departments] == [("D1", 23), ("D2", 92)]


# --- the draw --------------------------------------------------------------------------------

def _seed_operations(engine: sa.Engine, ticket_ids: list[str] | None = None) -> None:
    """Two departments; D1 with five active agents, one former agent and unassigned tickets."""
    contract.metadata.create_all(engine)
    agents = {"D1": ["A1", "A2", "A3", "A4", "A5", "A6"], "D2": ["B1", "B2"]}
    tickets = []
    ids = iter(ticket_ids or [f"T{n:05d}" for n in range(1, 10_000)])

    def ticket(department, agent, channel, resolved_at, closed_at=None, status="resolved"):
        tickets.append({
            "ticket_id": next(ids), "kind": "consultation", "channel": channel, "department_id": department,
            "agent_id": agent, "opened_at": MONDAY - timedelta(days=1), "resolved_at": resolved_at,
            "closed_at": closed_at, "status": status, "reopened_count": 0,
        })

    for n in range(400):
        agent = None if n % 40 == 0 else agents["D1"][n % 5]  # A6 has no ticket in this loop
        ticket("D1", agent, CHANNELS[n % 3], MONDAY + timedelta(minutes=25 * n))
    ticket("D1", "A6", "chat", MONDAY + timedelta(days=2))  # the former agent: not owed a minimum
    for n in range(30):
        closed = MONDAY + timedelta(hours=n)  # closed without resolved_at: handled when closed
        ticket("D2", agents["D2"][n % 2], "phone", None, closed_at=closed, status="closed")
    ticket("D2", "B2", "web", MONDAY + timedelta(days=3))  # B2's only web ticket
    # Outside the population: handled the week before or after, or not handled at all.
    ticket("D1", "A1", "chat", MONDAY - timedelta(seconds=1))
    ticket("D1", "A1", "chat", WEEK.end)
    ticket("D1", "A1", "chat", None, status="in_progress")
    with engine.begin() as conn:
        conn.execute(sa.insert(contract.departments), [
            {"department_id": "D1", "name": "客服一部"}, {"department_id": "D2", "name": "客服二部"}])
        conn.execute(sa.insert(contract.staff), [
            {"staff_id": s, "name": s, "department_id": d, "role": "agent", "active": s != "A6"}
            for d, members in agents.items() for s in members])
        conn.execute(sa.insert(contract.tickets), tickets)


def _draw(engine: sa.Engine, seed: int = 20261116, sampling: Sampling | None = None) -> SampleDraw:
    return draw_sample(Source(engine, SourceMapping()), WEEK, sampling or Sampling(), seed)


def test_population_is_the_tickets_handled_in_the_week(engine):
    _seed_operations(engine)
    draw = _draw(engine)
    assert [(d.department_id, d.population) for d in draw.departments] == [("D1", 401), ("D2", 31)]
    assert draw.large_population_size == 93


def test_the_draw_follows_the_plan(engine):
    _seed_operations(engine)
    draw = _draw(engine)
    d1, d2 = draw.departments
    assert (d1.planned_size, d1.size) == (76, 76)  # ceil(93 * 401 / 494)
    assert (d2.planned_size, d2.size) == (24, 24)  # ceil(93 * 31 / 124)
    assert len(draw.rows) == len({r.ticket_id for r in draw.rows}) == 100
    assert [r.draw_order for r in draw.rows] == list(range(1, 101))
    per_stratum = Counter((r.department_id, r.agent_id, r.channel) for r in draw.rows)
    planned = {(a.stratum.department_id, a.stratum.agent_id, a.stratum.channel): a.size
               for a in draw.allocations if a.size}
    assert per_stratum == planned
    assert sum(planned.values()) == d1.size + d2.size


def test_every_active_agent_with_tickets_is_sampled(engine):
    _seed_operations(engine)
    small = {"confidence": 0.90, "tolerable_rate": 0.20, "expected_rate": 0.0}  # 11 of 401 in D1
    draw = _draw(engine, sampling=Sampling(**small))
    sampled = {r.agent_id for r in draw.rows}
    assert {"A1", "A2", "A3", "A4", "A5", "B1", "B2"} <= sampled
    # Without the minimum, proportional allocation alone would leave A1 out.
    assert "A1" not in {r.agent_id for r in _draw(engine, sampling=Sampling(**small, min_per_agent=0)).rows}
    assert draw.departments[0].size == len([r for r in draw.rows if r.department_id == "D1"])


def test_same_seed_same_sample_other_seed_other_sample(engine):
    _seed_operations(engine)
    first, again, other = _draw(engine, 7), _draw(engine, 7), _draw(engine, 8)
    assert first == again
    assert {r.ticket_id for r in first.rows} != {r.ticket_id for r in other.rows}
    assert first.parameters()["seed"] == 7


def test_the_draw_does_not_depend_on_the_database_collation(engine, tmp_path):
    # Mixed case and punctuation sort differently under PostgreSQL's locale collations.
    ids = [f"{prefix}{n}" for n in range(500) for prefix in ("t-", "T_", "Ta", "ta")]
    _seed_operations(engine, ids)
    reference = create_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    _seed_operations(reference, ids)
    assert _draw(engine) == _draw(reference)
    reference.dispose()


def test_a_week_without_tickets_draws_nothing(engine):
    _seed_operations(engine)
    draw = draw_sample(Source(engine, SourceMapping()), week(2025, 10), Sampling(), 1)
    assert draw.rows == () and draw.departments == ()


def test_the_seed_must_fit_the_store(engine):
    _seed_operations(engine)
    with pytest.raises(ValueError, match="seed"):
        _draw(engine, 2**63)


# --- the store -------------------------------------------------------------------------------

def _audit_run(conn: sa.Connection, run_id: str) -> None:
    conn.execute(sa.insert(schema.audit_runs).values(
        id=run_id, audit="cs-weekly", kind="periodic", period=WEEK.label, period_start=WEEK.start,
        period_end=WEEK.end, parameters={}, started_at=datetime.now(UTC), status="succeeded",
        config_hash="0" * 32))


def test_record_sample_replaces_an_earlier_attempt_of_the_run(engine):
    _seed_operations(engine)
    schema.metadata.create_all(engine)
    first, second = _draw(engine, 1), _draw(engine, 2)
    with engine.begin() as conn:
        _audit_run(conn, "run-1")
        _audit_run(conn, "run-2")
    with engine.connect() as conn:
        record_sample(conn, "run-1", WEEK.label, first)
        record_sample(conn, "run-1", WEEK.label, first)
        record_sample(conn, "run-2", WEEK.label, first)
        record_sample(conn, "run-2", WEEK.label, second)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(schema.samples).order_by(schema.samples.c.draw_order)).all()
    run1 = [r for r in stored if r.audit_run_id == "run-1"]
    run2 = [r for r in stored if r.audit_run_id == "run-2"]
    assert [(r.ticket_id, r.draw_order) for r in run1] == [(r.ticket_id, r.draw_order) for r in first.rows]
    assert {r.seed for r in run1} == {1}
    assert [r.ticket_id for r in run2] == [r.ticket_id for r in second.rows]
    assert {(r.period, r.seed) for r in run2} == {(WEEK.label, 2)}


def test_record_sample_joins_the_callers_transaction(engine):
    _seed_operations(engine)
    schema.metadata.create_all(engine)
    draw = _draw(engine)
    with engine.begin() as conn:
        _audit_run(conn, "run-1")
    with engine.connect() as conn, conn.begin() as transaction:
        record_sample(conn, "run-1", WEEK.label, draw)
        transaction.rollback()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.samples)).scalar() == 0
