"""An audit restricted to departments, or to a sample of records, judges exactly those: every
rule of the catalogue, on SQLite and PostgreSQL, against the same rule run on everything."""

from __future__ import annotations

from typing import Any

import pytest
from builders import Dataset, run_rule
from test_rules import AGGREGATE_CASES, RECORD_CASES, AggregateCase, RecordCase

from opsaudit.checks.results import CheckResult
from opsaudit.checks.scope import Scope

# The id columns of each fact table, and the ids they refer to, for a mirrored copy of a scenario.
ID_COLUMNS = {
    "tickets": ("ticket_id",), "qa_reviews": ("review_id", "ticket_id"), "tasks": ("task_id", "plan_id"),
    "plans": ("plan_id",), "plan_targets": ("plan_id",), "plan_signoffs": ("plan_id",),
    "plan_adjustments": ("adjustment_id", "plan_id"), "analysis_reports": ("report_id",),
    "reported_metrics": ("report_id",),
}
# The stated figures of analysis reports are re-computed over the whole company: mirroring them
# changes the truth they are compared with, so that scenario is checked on its own below.
MIRRORED_CASES = [case for case in RECORD_CASES if case.rule_id != "data.metric_mismatch"]


def mirror(data: Dataset, prefix: str = "m-") -> None:
    """Copy every fact row of department D1 into D2 under ids with `prefix` (rows of D2 stay in D2):
    both departments then have the same problems."""
    for table, columns in ID_COLUMNS.items():
        for row in list(data.rows[table]):
            copy = {**row, **{c: prefix + row[c] for c in columns if row[c] is not None}}
            if table != "plan_signoffs" and copy.get("department_id") == "D1":  # a sign-off's is the collaborator
                copy["department_id"] = "D2"
            data.rows[table].append(copy)


def judged(results: list[CheckResult]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """What a person reads of each department, agent or record result. A record's population is
    the number of records its rule examined in the audit (see the roll-ups), not its own."""
    return {(r.entity_type, r.entity_id): (r.department_id, r.outcome, r.severity, r.observed,
                                           r.population if r.observed is not None else None,
                                           tuple(r.evidence.get("sample_ids", [])))
            for r in results if r.entity_type != "company"}


def rollups(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.entity_type == "company"]


@pytest.mark.parametrize("case", MIRRORED_CASES, ids=lambda case: case.id)
def test_a_record_rule_in_scope_finds_its_departments_records_and_examines_only_them(engine, case: RecordCase):
    data = Dataset()
    case.build(data)
    mirror(data)
    data.insert(engine)

    everything = run_rule(engine, case.rule_id, case.entity_type, period=case.period, now=case.now)
    scoped = {department: run_rule(engine, case.rule_id, case.entity_type, period=case.period, now=case.now,
                                   scope=Scope(departments=(department,))) for department in ("D1", "D2")}

    for department, results in scoped.items():
        mine = {key: value for key, value in judged(everything).items() if value[0] == department}
        assert judged(results) == mine, department
    assert judged(scoped["D2"])   # the mirrored problems are found in D2 as in D1
    [total] = rollups(everything)
    parts = [rollup for results in scoped.values() for rollup in rollups(results)]
    assert [r.entity_id for r in parts] == [total.entity_id] * 2   # the roll-up, never a company finding
    assert sum(r.population for r in parts) == total.population   # each record examined in its department
    assert sum(r.facts["violations"] for r in parts) == total.facts["violations"]
    for rollup, results in zip(parts, scoped.values(), strict=True):
        assert {r.population for r in results if r.entity_type != "company"} <= {rollup.population}


DEPARTMENT_CASES = [case for case in AGGREGATE_CASES if case.entity_type == "department"]


@pytest.mark.parametrize("case", DEPARTMENT_CASES, ids=lambda case: case.id)
def test_a_department_rule_in_scope_judges_those_departments_as_before_and_not_the_company(
        engine, case: AggregateCase):
    data = Dataset()
    case.build(data)
    data.insert(engine)
    failed = sorted(entity for entity, (_, severity) in case.expected.items() if severity is not None)
    chosen = (failed[0], failed[-1])

    everything = run_rule(engine, case.rule_id, case.entity_type, period=case.period, now=case.now)
    scoped = run_rule(engine, case.rule_id, case.entity_type, period=case.period, now=case.now,
                      scope=Scope(departments=chosen))

    assert judged(scoped) == {key: value for key, value in judged(everything).items() if key[1] in chosen}
    assert rollups(everything) and not rollups(scoped)   # two departments are not the whole company


@pytest.mark.parametrize("case", [case for case in AGGREGATE_CASES if case.entity_type == "agent"],
                         ids=lambda case: case.id)
def test_an_agent_rule_in_scope_judges_the_agents_of_those_departments(engine, case: AggregateCase):
    data = Dataset()
    case.build(data)
    data.insert(engine)

    everything = judged(run_rule(engine, case.rule_id, case.entity_type, period=case.period, now=case.now))
    own = judged(run_rule(engine, case.rule_id, case.entity_type, period=case.period, now=case.now,
                          scope=Scope(departments=("CS",))))
    other = judged(run_rule(engine, case.rule_id, case.entity_type, period=case.period, now=case.now,
                            scope=Scope(departments=("D9",))))

    assert own == everything and other == {}


def test_stated_figures_in_scope_are_those_about_the_department_still_compared_with_the_whole_truth(engine):
    [case] = [case for case in RECORD_CASES if case.rule_id == "data.metric_mismatch"]
    data = Dataset()
    case.build(data)
    data.insert(engine)

    everything = judged(run_rule(engine, case.rule_id, period=case.period, now=case.now))
    d3 = judged(run_rule(engine, case.rule_id, period=case.period, now=case.now, scope=Scope(departments=("D3",))))

    assert d3 == {key: value for key, value in everything.items() if value[0] == "D3"}
    assert [key[1] for key in d3] == ["major-D3/ticket_count/D3"]


def test_a_sample_of_records_is_all_a_rate_is_computed_on(engine):
    [case] = [case for case in AGGREGATE_CASES if case.id == "cs.satisfaction_rate[department]"]
    data = Dataset()
    case.build(data)
    data.insert(engine)
    # e93 has 93 satisfied and 7 unsatisfied tickets; a sample of 20 satisfied and 5 unsatisfied fails.
    sample = tuple([f"e93-ok-{i:03d}" for i in range(20)] + [f"e93-bad-{i:03d}" for i in range(93, 98)])

    results = run_rule(engine, case.rule_id, case.entity_type, period=case.period, now=case.now,
                       scope=Scope(departments=("e93",), sample_table="tickets", sample_ids=sample))

    [result] = [r for r in results if r.entity_type == "department"]
    assert (result.entity_id, result.population, result.observed) == ("e93", 25, 0.8)
    assert set(result.evidence["sample_ids"]) == set(sample[20:])


def test_a_rule_that_cannot_be_narrowed_to_the_sample_refuses_to_run(engine):
    data = Dataset()
    data.task("K1")
    data.insert(engine)

    with pytest.raises(ValueError, match="cannot be restricted to a sample of tickets"):
        run_rule(engine, "exec.on_time_rate", scope=Scope(departments=("D1",), sample_table="tickets",
                                                          sample_ids=("T1",)))
