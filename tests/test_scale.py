"""The engine at a real company's scale: the statements an audit sends depend on its rules, never
on how many findings it records; and thousands of results pass between Prefect tasks as one object."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from opsaudit.checks.results import CheckResult, Outcome, ResultSet
from opsaudit.contract import departments, metadata, staff, tickets
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import VERSION_TABLE, findings
from opsaudit.store.schema import metadata as store

OCTOBER = datetime(2026, 10, 1)
AGENTS = 500


def fresh_company(engine: sa.Engine) -> None:
    """Drop the store (its append-only tables refuse a DELETE, so whole tables go) and the company."""
    cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""
    with engine.begin() as conn:
        for table in [*reversed(store.sorted_tables), VERSION_TABLE]:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {getattr(table, 'name', table)}{cascade}"))
        if cascade:
            conn.execute(sa.text("DROP FUNCTION IF EXISTS oa_refuse_change()"))
    metadata.drop_all(engine, tables=[tickets, staff, departments])


def contact_centre(engine: sa.Engine, failing: int) -> None:
    """500 agents in 5 departments, 20 rated tickets each; the first `failing` agents have half
    of theirs unsatisfied, everyone else none."""
    metadata.create_all(engine, tables=[departments, staff, tickets])
    heads = [{"staff_id": f"M{d}", "name": f"Head {d}", "department_id": f"D{d}", "role": "manager", "email": None,
              "active": True} for d in range(5)]
    ops = {"staff_id": "M-OPS", "name": "Operations manager", "department_id": "OPS", "role": "manager",
           "email": None, "active": True}
    agents = [{"staff_id": f"A{i:03d}", "name": f"Agent {i}", "department_id": f"D{i % 5}", "role": "agent",
               "email": None, "active": True} for i in range(AGENTS)]
    rows = []
    for i in range(AGENTS):
        for n in range(20):
            opened = OCTOBER + timedelta(minutes=1 + (i * 20 + n) * 4.3)   # the whole month, fresh to its end
            rows.append({"ticket_id": f"T{i:03d}-{n:02d}", "kind": "consultation", "channel": "phone",
                         "department_id": f"D{i % 5}", "agent_id": f"A{i:03d}", "opened_at": opened,
                         "first_response_at": opened + timedelta(minutes=5), "resolved_at": opened + timedelta(hours=2),
                         "closed_at": None, "status": "resolved", "satisfaction": 2 if i < failing and n < 10 else 5,
                         "revisited_at": opened + timedelta(days=1), "reopened_count": 0})
    with engine.begin() as conn:
        conn.execute(departments.insert(), [{"department_id": "OPS", "name": "Operations", "parent_id": None,
                                             "head_id": "M-OPS"}] +
                     [{"department_id": f"D{d}", "name": f"Service {d}", "parent_id": "OPS", "head_id": f"M{d}"}
                      for d in range(5)])
        conn.execute(staff.insert(), [ops, *heads, *agents])
        conn.execute(tickets.insert(), rows)
    upgrade(engine)


@pytest.mark.usefixtures("prefect_harness")
def test_an_audit_sends_the_same_statements_for_one_failing_agent_or_five_hundred(db_url, engine, monkeypatch,
                                                                                   tmp_path):
    from opsaudit.flows.audits import cs_monthly

    # Only the agents are judged, so that the departments pass or fail alike in both companies.
    (tmp_path / "config" / "thresholds.yaml").write_text(
        "rules:\n  cs.satisfaction_rate:\n    entities:\n      department: {enabled: false}\n", encoding="utf-8")
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    counted: list[int] = []
    for failing in (1, AGENTS):
        fresh_company(engine)
        contact_centre(engine, failing)
        statements: list[str] = []

        def count(*args, statements=statements) -> None:
            statements.append(args[2])

        sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
        try:
            summary = cs_monthly(period="2026-10", now=datetime(2026, 11, 2, 9))
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
        with engine.connect() as conn:
            raised = conn.execute(sa.select(sa.func.count()).select_from(findings)
                                  .where(findings.c.entity_type == "agent")).scalar_one()
        assert raised == failing and summary["problems"]["important"] >= failing
        counted.append(len(statements))
    assert counted[0] == counted[1]


def test_prefect_passes_a_result_set_as_one_object():
    """Prefect walks lists and dataclasses given to a task object by object; a ResultSet it does not
    enter, however many results it holds, and the dashboard reads what it is."""
    from prefect.utilities.collections import visit_collection

    results = ResultSet(CheckResult("cs.satisfaction_rate", "customer_service", "agent", f"A{i}", Outcome.PASSED)
                        for i in range(4000))
    visited: list[object] = []
    visit_collection(results, visit_fn=visited.append, return_data=False)
    assert visited == [results]
    assert repr(results) == "ResultSet(4,000 results: 4,000 passed)"
    listed: list[object] = []
    visit_collection(list(results), visit_fn=listed.append, return_data=False)
    assert len(listed) > 4000   # what a plain list of results costs instead


def test_evidence_of_thousands_of_failures_is_drawn_from_a_hashed_share_of_them(db_url, engine, monkeypatch):
    """Agents with hundreds of unsatisfied tickets each: every one gets 20 samples, all of them its
    own offending tickets, the same on a rerun. PostgreSQL ranks only a hashed share of the month
    (so they are not simply its first 20); SQLite, for a company of its size, ranks them all."""
    from opsaudit.audit import build_context
    from opsaudit.checks import engine as audit_engine
    from opsaudit.settings import load_settings

    fresh_company(engine)
    metadata.create_all(engine, tables=[departments, staff, tickets])
    rows = [{"ticket_id": f"T{a}-{n:03d}", "kind": "consultation", "channel": "phone", "department_id": "D0",
             "agent_id": f"A{a}", "opened_at": OCTOBER + timedelta(hours=n, minutes=a),
             "first_response_at": OCTOBER + timedelta(hours=n, minutes=a + 5), "resolved_at": None,
             "closed_at": None, "status": "in_progress", "satisfaction": 2 if n % 4 else 5, "revisited_at": None,
             "reopened_count": 0} for a in range(4) for n in range(400)]
    with engine.begin() as conn:
        conn.execute(departments.insert(), [{"department_id": "D0", "name": "Service", "parent_id": None,
                                             "head_id": None}])
        conn.execute(tickets.insert(), rows)
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    context = build_context(load_settings(), "cs-monthly", period="2026-10", now=datetime(2026, 11, 2, 9))
    rules = tuple(rule for rule in context.rules if rule.rule_id == "cs.satisfaction_rate")
    computation = audit_engine.compute(context.source, rules, context.period, now=context.now,
                                       available={"tickets", "departments"})
    judged = audit_engine.evaluate(computation)

    def agents_samples() -> dict[str, list[str]]:
        drawn = audit_engine.collect_samples(context.source, computation, judged)
        return {r.entity_id: r.evidence["sample_ids"] for r in drawn if r.entity_type == "agent"}

    samples = agents_samples()
    assert sorted(samples) == ["A0", "A1", "A2", "A3"]
    for agent, ids in samples.items():
        offending = sorted(row["ticket_id"] for row in rows if row["agent_id"] == agent and row["satisfaction"] == 2)
        assert len(ids) == 20 and set(ids) <= set(offending)
        assert (ids == offending[:20]) is (engine.dialect.name == "sqlite")
    assert agents_samples() == samples


def test_the_evidence_of_every_rule_on_the_tickets_is_one_reading_and_each_rule_keeps_its_own(db_url, engine,
                                                                                               monkeypatch):
    """Agents who answer late, leave customers unsatisfied or leave tickets open: one query reads
    the month of tickets for the samples of every failing rule, and each rule's samples are the
    ones it draws on its own."""
    from opsaudit.audit import build_context
    from opsaudit.checks import engine as audit_engine
    from opsaudit.settings import load_settings

    fresh_company(engine)
    metadata.create_all(engine, tables=[departments, staff, tickets])
    rows = []
    for a in range(9):
        for n in range(30):
            opened = OCTOBER + timedelta(hours=n * 20, minutes=a)
            late, unsatisfied, open_ = a % 3 == 0 and n % 2 == 0, a % 3 == 1 and n % 3 == 0, a % 3 == 2 and n < 12
            rows.append({"ticket_id": f"T{a}-{n:02d}", "kind": "consultation", "channel": "phone",
                         "department_id": f"D{a % 2}", "agent_id": f"A{a}", "opened_at": opened,
                         "first_response_at": opened + timedelta(minutes=150 if late else 10),
                         "resolved_at": None if open_ else opened + timedelta(hours=3), "closed_at": None,
                         "status": "in_progress" if open_ else "resolved", "satisfaction": 2 if unsatisfied else 5,
                         "revisited_at": None if open_ else opened + timedelta(days=1), "reopened_count": 0})
    with engine.begin() as conn:
        conn.execute(departments.insert(), [{"department_id": f"D{d}", "name": f"Service {d}", "parent_id": None,
                                             "head_id": None} for d in range(2)])
        conn.execute(tickets.insert(), rows)
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    context = build_context(load_settings(), "cs-monthly", period="2026-10", now=datetime(2026, 11, 2, 9))
    on_tickets = tuple(rule for rule in context.rules if rule.rule_id.startswith("cs."))

    def samples(rules) -> dict[tuple[str, str, str], list[str]]:
        computation = audit_engine.compute(context.source, rules, context.period, now=context.now,
                                           available={"tickets", "departments"})
        drawn = audit_engine.collect_samples(context.source, computation, audit_engine.evaluate(computation))
        return {(r.rule_id, r.entity_type, r.entity_id): r.evidence["sample_ids"]
                for r in drawn if r.evidence.get("sample_ids")}

    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        # Readings of the data; the session's settings (SELECT set_config(...)) read no table.
        if statement.lstrip().upper().startswith("SELECT") and re.search(r"\bFROM\b", statement, re.IGNORECASE):
            statements.append(statement)

    computation = audit_engine.compute(context.source, on_tickets, context.period, now=context.now,
                                       available={"tickets", "departments"})
    judged = audit_engine.evaluate(computation)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        audit_engine.collect_samples(context.source, computation, judged)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
    together = samples(on_tickets)
    failing = {rule_id for rule_id, _, _ in together}
    assert len(failing) >= 3, failing
    assert len(statements) == 1
    apart: dict[tuple[str, str, str], list[str]] = {}
    for rule in on_tickets:
        apart |= samples((rule,))
    assert together == apart
    assert all(ids for ids in together.values())


def test_samples_are_stored_as_labelled_records_and_released_from_every_holder_once_recorded(db_url, engine,
                                                                                            monkeypatch):
    """The engine keeps each finding's records as one small table (Samples); the store writes them
    as one object per record. Once recorded they leave the results themselves, so that the copy
    Prefect keeps of a task's result lets them go too; the ids and figures stay."""
    from opsaudit.audit import build_context
    from opsaudit.checks import engine as audit_engine
    from opsaudit.checks.results import FINDING_ONLY
    from opsaudit.periods import parse_period
    from opsaudit.settings import load_settings
    from opsaudit.store import findings as findings_store
    from opsaudit.store import runs

    fresh_company(engine)
    contact_centre(engine, 3)
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    settings = load_settings()
    context = build_context(settings, "cs-monthly", period="2026-10", now=datetime(2026, 11, 2, 9))
    rules = tuple(rule for rule in context.rules if rule.rule_id == "cs.satisfaction_rate")
    computation = audit_engine.compute(context.source, rules, context.period, now=context.now,
                                       available={"tickets", "departments"})
    kept = audit_engine.collect_samples(context.source, computation, audit_engine.evaluate(computation))
    together = ResultSet(()) + kept   # the flow's results, as Prefect keeps the task's own
    found_at = datetime(2026, 11, 2, 9, tzinfo=settings.tz)
    with context.store.begin() as conn:
        run = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period("2026-10"),
                             parameters={}, config_hash="x", started_at=found_at)
        findings_store.record_findings(conn, run, together, found_at=found_at,
                                       deadlines=settings.load_config().thresholds.deadlines, recurrence_periods=0,
                                       config_hash="x", zone=settings.tz)
    together.release_evidence()

    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(findings.c.entity_id, findings.c.evidence)
                                   .where(findings.c.entity_type == "agent")).all())
    assert sorted(stored) == ["A000", "A001", "A002"]
    for agent, evidence in stored.items():
        records = evidence["samples"]
        assert [record["sample_id"] for record in records] == evidence["sample_ids"]
        assert [record["sample_id"] for record in records] == [f"T{agent[1:]}-{n:02d}" for n in range(10)]
        assert all(record == {"sample_id": record["sample_id"], "agent_id": agent, "satisfaction": 2}
                   for record in records), records
        assert evidence["query"] and evidence["records_query"]
    failed = [result for result in kept if result.is_problem and result.entity_type == "agent"]
    assert len(failed) == 3
    assert all(not set(FINDING_ONLY) & set(result.evidence) and len(result.evidence["sample_ids"]) == 10
               for result in failed)
