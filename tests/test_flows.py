"""The periodic flows end to end under Prefect's test harness, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from opsaudit.contract import departments, metadata, qa_reviews, staff, tasks, tickets
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import audit_runs, findings, samples

pytestmark = pytest.mark.usefixtures("prefect_harness")

OCTOBER = datetime(2026, 10, 1)


def small_company(engine: sa.Engine, *, with_tasks: bool = True) -> None:
    """Two CS departments; D2 answers slowly and leaves a critical task overdue."""
    rng = random.Random(7)
    tables = [departments, staff, tickets, qa_reviews] + ([tasks] if with_tasks else [])
    metadata.create_all(engine, tables=tables)
    people = [{"staff_id": "M1", "name": "Operations manager", "department_id": "OPS", "role": "manager",
               "email": None, "active": True},
              {"staff_id": "S1", "name": "Head one", "department_id": "D1", "role": "manager", "email": None,
               "active": True},
              {"staff_id": "S2", "name": "Head two", "department_id": "D2", "role": "manager", "email": None,
               "active": True}]
    people += [{"staff_id": f"A{i}", "name": f"Agent {i}", "department_id": "D1" if i < 3 else "D2",
                "role": "agent", "email": None, "active": True} for i in range(6)]
    rows = []
    for i in range(600):
        department = "D1" if i % 2 == 0 else "D2"
        agent = f"A{rng.randrange(3) + (0 if department == 'D1' else 3)}"
        opened = OCTOBER + timedelta(minutes=rng.randrange(60 * 24 * 34))
        slow = department == "D2" and i % 5 == 1
        rows.append({"ticket_id": f"T{i:04d}", "kind": "consultation", "channel": "phone", "department_id": department,
                     "agent_id": agent, "opened_at": opened,
                     "first_response_at": opened + timedelta(minutes=150 if slow else 20),
                     "resolved_at": opened + timedelta(hours=6), "closed_at": None, "status": "resolved",
                     "satisfaction": 5, "revisited_at": opened + timedelta(days=1), "reopened_count": 0})
    with engine.begin() as conn:
        conn.execute(departments.insert(), [{"department_id": "OPS", "name": "Operations", "parent_id": None,
                                             "head_id": "M1"},
                                            {"department_id": "D1", "name": "CS one", "parent_id": None,
                                             "head_id": "S1"},
                                            {"department_id": "D2", "name": "CS two", "parent_id": None,
                                             "head_id": "S2"}])
        conn.execute(staff.insert(), people)
        conn.execute(tickets.insert(), rows)
        if with_tasks:
            conn.execute(tasks.insert(), [{
                "task_id": "K1", "plan_id": None, "department_id": "D2", "owner_id": "A4", "title": "Migrate",
                "priority": "critical", "planned_start": None, "due_at": datetime(2026, 8, 1), "started_at": None,
                "completed_at": None, "status": "in_progress", "expected_output": None, "actual_output": None,
                "budget_hours": None, "actual_hours": None, "budget_cost": None, "actual_cost": None}])


@pytest.fixture
def company(db_url, engine, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    small_company(engine)
    upgrade(engine)
    return engine


def finding_keys(engine: sa.Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(findings.c.rule_id, findings.c.entity_id, findings.c.severity)).all())


def test_monthly_audit_records_findings_and_a_rerun_does_not_duplicate(company, tmp_path):
    from opsaudit.flows.audits import cs_monthly, execution_monthly

    summary = cs_monthly(period="2026-10")
    assert summary["period"] == "2026-10"
    keys = finding_keys(company)
    assert ("cs.first_response_rate", "D2", "major") in keys
    assert not [key for key in keys if key[:2] == ("cs.first_response_rate", "D1")]
    cs_monthly(period="2026-10")
    assert finding_keys(company) == keys
    execution_monthly(now=datetime(2026, 11, 1, 9))
    assert ("exec.overdue_task", "K1", "major") in finding_keys(company)
    with company.connect() as conn:
        statuses = conn.execute(sa.select(audit_runs.c.audit, audit_runs.c.period, audit_runs.c.status)
                                .order_by(audit_runs.c.started_at)).all()
    assert [tuple(s) for s in statuses] == [("cs-monthly", "2026-10", "succeeded")] * 2 + [
        ("execution-monthly", "2026-10", "succeeded")]
    output = json.loads((tmp_path / "out" / "cs-monthly" / "2026-10" / "results.json").read_text())
    assert output["audit"] == "cs-monthly" and output["results"]


def test_the_flow_log_says_what_the_audit_found_in_sentences(company, monkeypatch):
    """The dashboard's log is read by people: sentences from the catalogue, in OPSAUDIT_LANGUAGE."""
    from dashboard import run_logs, run_of

    from opsaudit.flows.audits import cs_monthly

    def logged(language: str) -> list[str]:
        monkeypatch.setenv("OPSAUDIT_LANGUAGE", language)
        state = cs_monthly(period="2026-10", return_state=True)
        summary = state.result()
        counts = summary["findings"]
        lines = run_logs(run_of(state).id)
        assert not [line for line in lines if "{'" in line]   # no dict printed as it is
        return [line for line in lines if str(counts["results"]) in line or "报告" in line or "report" in line]

    chinese = logged("zh-CN")
    assert any(line.startswith("记录稽查结果") and "问题：新增" in line for line in chinese), chinese
    assert "稽查报告已提交：中文：待审核" in chinese
    english = logged("en")   # the rerun: the same findings, unchanged
    assert any(" audit results recorded; problems: 0 raised (0 of them recurring), 0 updated" in line
               for line in english), english
    assert "audit report submitted: English: awaiting review" in english


def test_a_stop_the_runner_sent_ends_the_audit_even_when_its_sigterm_was_lost(company):
    """serve stopping, or a cancel from the dashboard: the runner's intent came, its SIGTERM never
    raised (Python drops it inside a weakref callback). The audit stops at its next step,
    recorded interrupted, and Prefect records the flow run cancelled."""
    from prefect._internal import control_listener
    from prefect.client.orchestration import get_client
    from prefect.exceptions import TerminationSignal

    from opsaudit.flows.audits import cs_monthly

    control_listener._set_intent("cancel")   # what the runner's control channel sets before SIGTERM
    try:
        with pytest.raises(TerminationSignal):
            cs_monthly(period="2026-10")
    finally:
        control_listener.reset_for_testing()
    with company.connect() as conn:
        run = conn.execute(sa.select(audit_runs.c.status, audit_runs.c.error, audit_runs.c.flow_run_id)).one()
        recorded = conn.execute(sa.select(sa.func.count()).select_from(findings)).scalar()
    assert (run.status, run.error, recorded) == ("interrupted", "interrupted (Ctrl-C or SIGTERM)", 0)
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run.flow_run_id).state.is_cancelled()
    assert cs_monthly(period="2026-10")["findings"]["raised"] > 0   # the next run is not held back


def test_a_sigterm_of_the_command_ends_the_audit_even_when_its_exception_was_dropped(company):
    """`opsaudit run` got SIGTERM, whose KeyboardInterrupt Python dropped inside a weakref callback:
    the handler remembered it, and the audit stops at its next step, recorded interrupted."""
    import signal

    from opsaudit.flows.audits import cs_monthly
    from opsaudit.signals import ask_to_stop, forget_stop

    ask_to_stop(signal.SIGTERM)   # what the command's handler records before it raises
    try:
        with pytest.raises(KeyboardInterrupt):
            cs_monthly(period="2026-10")
    finally:
        forget_stop()
    with company.connect() as conn:
        run = conn.execute(sa.select(audit_runs.c.status, audit_runs.c.error)).one()
        recorded = conn.execute(sa.select(sa.func.count()).select_from(findings)).scalar()
    assert (run.status, run.error, recorded) == ("interrupted", "interrupted (Ctrl-C or SIGTERM)", 0)
    assert cs_monthly(period="2026-10")["findings"]["raised"] > 0   # the next run is not held back


def test_weekly_audit_draws_and_records_the_sample(company, tmp_path):
    from opsaudit.flows.audits import cs_weekly

    first = cs_weekly(now=datetime(2026, 10, 20, 8))   # Tuesday of W43: audits W42
    assert first["period"] == "2026-W42"
    again = cs_weekly(period="2026-W42")
    assert again["sample"]["seed"] == first["sample"]["seed"]   # a rerun re-performs the same draw
    with company.connect() as conn:
        drawn = conn.execute(sa.select(samples.c.audit_run_id, samples.c.ticket_id)).all()
        seeds = conn.execute(sa.select(audit_runs.c.seed)).scalars().all()
    by_run: dict[str, set[str]] = {}
    for run_id, ticket in drawn:
        by_run.setdefault(run_id, set()).add(ticket)
    assert len(by_run) == 2 and len({frozenset(v) for v in by_run.values()}) == 1
    assert set(seeds) == {first["sample"]["seed"]}
    assert Path(first["sample"]["sheet_xlsx"]).is_file() and Path(first["sample"]["sheet_csv"]).is_file()


def test_company_with_only_customer_service_tables(db_url, engine, monkeypatch):
    from opsaudit.flows.audits import cs_monthly, execution_monthly

    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    small_company(engine, with_tasks=False)
    upgrade(engine)
    cs_monthly(period="2026-10")
    execution_monthly(period="2026-10")   # reads tasks, which this company does not have
    with engine.connect() as conn:
        missing = conn.execute(sa.select(findings.c.rule_id, findings.c.entity_id, findings.c.severity)
                               .where(findings.c.entity_id.like("tasks%"))).all()
    assert missing and all(severity == "major" for _, _, severity in missing)
