"""A company's own names, mapped onto the contract: the rules run on them unchanged."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from opsaudit.checks import engine as rule_engine
from opsaudit.checks.results import Outcome, Severity
from opsaudit.checks.spec import effective_rules
from opsaudit.config.loader import load_config
from opsaudit.config.models import SourceMapping
from opsaudit.periods import parse_period
from opsaudit.source import Source, check_source


def crm_database(engine: sa.Engine) -> None:
    """A CRM that names things its own way: cases instead of tickets, an HR view of people."""
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE crm_cases (case_no VARCHAR(20) PRIMARY KEY, case_type VARCHAR(20), via VARCHAR(20), "
            "dept VARCHAR(20), handler VARCHAR(20), created TIMESTAMP, first_reply TIMESTAMP, solved TIMESTAMP, "
            "closed TIMESTAMP, state VARCHAR(20), stars INTEGER, callback TIMESTAMP, reopened INTEGER)"))
        conn.execute(sa.text("CREATE TABLE org_units (code VARCHAR(20), title VARCHAR(50), boss VARCHAR(20))"))
        opened = datetime(2026, 10, 3, 9)
        rows = [{"no": f"C{i:03d}", "created": opened + timedelta(hours=i), "stars": 2 if i < 8 else 5}
                for i in range(40)]
        conn.execute(sa.text(
            "INSERT INTO crm_cases VALUES (:no, 'consultation', 'phone', 'D1', 'S1', :created, :created, "
            ":created, NULL, 'resolved', :stars, :created, 0)"), rows)
        conn.execute(sa.text("INSERT INTO org_units VALUES ('D1', 'Service', 'S1')"))


MAPPING = SourceMapping.model_validate({"tables": {
    "tickets": {"table": "crm_cases", "columns": {
        "ticket_id": "case_no", "kind": "case_type", "channel": "via", "department_id": "dept",
        "agent_id": "handler", "opened_at": "created", "first_response_at": "first_reply",
        "resolved_at": "solved", "closed_at": "closed", "status": "state", "satisfaction": "stars",
        "revisited_at": "callback", "reopened_count": "reopened"}},
    "departments": {"select": "SELECT code AS department_id, title AS name, NULL AS parent_id, "
                              "boss AS head_id FROM org_units"},
}})


def test_rules_run_on_mapped_names(engine):
    crm_database(engine)
    source = Source(engine, MAPPING)
    assert check_source(source, ("tickets", "departments")) == []
    rules = [r for r in effective_rules(load_config(None).thresholds)
             if r.rule_id == "cs.satisfaction_rate" and r.entity_type == "department"]
    computation = rule_engine.compute(source, rules, parse_period("2026-10"), now=datetime(2026, 11, 2),
                                      available={"tickets", "departments"})
    results = rule_engine.collect_samples(source, computation, rule_engine.evaluate(computation))
    (department,) = [r for r in results if r.entity_type == "department"]
    assert (department.entity_id, department.outcome, department.severity) == ("D1", Outcome.FAILED,
                                                                                Severity.IMPORTANT)
    assert department.observed == 0.8 and department.owner_id == "S1"
    assert department.evidence["sample_ids"] == [f"C{i:03d}" for i in range(8)]
    assert "crm_cases" in department.evidence["query"]


def test_check_source_names_the_source_column(engine):
    crm_database(engine)
    mapping = SourceMapping.model_validate({"tables": {"tickets": {
        "table": "crm_cases", "columns": {**MAPPING.tables["tickets"].columns, "satisfaction": "rating"}}}})
    problems = check_source(Source(engine, mapping), ("tickets",))
    assert [problem.text("en") for problem in problems] == [
        "crm_cases.rating: missing column (contract tickets.satisfaction)"]
    assert [problem.text("zh-CN") for problem in problems] == [
        "crm_cases.rating：缺少字段（数据约定中的tickets.satisfaction）"]


def test_the_audits_read_the_source_through_a_connection_that_cannot_write(db_url, engine):
    from opsaudit.contract import metadata
    from opsaudit.db import source_engine

    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO departments (department_id, name) VALUES ('D1', 'Service')"))
    reader = source_engine(db_url, timezone="Asia/Shanghai")
    for statement in ("DELETE FROM departments", "CREATE TABLE intruder (x INTEGER)", "DROP TABLE plan_adjustments"):
        with pytest.raises(sa.exc.DBAPIError), reader.begin() as conn:
            conn.execute(sa.text(statement))
    if engine.dialect.name == "postgresql":
        # A COMMIT smuggled into a SELECT ends the read-only transaction; the next one is read-only too.
        with pytest.raises(sa.exc.DBAPIError), reader.connect() as conn:
            conn.exec_driver_sql("SELECT 1; COMMIT; DROP TABLE plan_adjustments")
    reader.dispose()
    inspector = sa.inspect(engine)
    assert inspector.has_table("plan_adjustments") and not inspector.has_table("intruder")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM departments")).scalar_one() == 1


def test_a_timestamptz_source_audits_like_a_naive_one(pg_url):
    """Times near a month boundary in Asia/Shanghai: 23:30 on 31 October local is 15:30 UTC."""
    from opsaudit.checks.quality import run_data_quality
    from opsaudit.db import create_engine, source_engine

    url = pg_url
    writer = create_engine(url)
    with writer.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE crm_cases (case_no TEXT PRIMARY KEY, dept TEXT, created TIMESTAMPTZ, "
            "answered TIMESTAMPTZ, stars INTEGER)"))
        conn.execute(sa.text("CREATE TABLE departments (department_id TEXT PRIMARY KEY, name TEXT, "
                             "parent_id TEXT, head_id TEXT)"))
        conn.execute(sa.text("INSERT INTO departments VALUES ('D1', 'Service', NULL, NULL)"))
        rows = [{"no": f"OCT{i:02d}", "created": "2026-10-31 23:30:00+08", "stars": 2 if i < 5 else 5}
                for i in range(25)]
        rows += [{"no": f"NOV{i:02d}", "created": "2026-10-31 16:30:00+00", "stars": 1} for i in range(25)]
        conn.execute(sa.text("INSERT INTO crm_cases VALUES (:no, 'D1', CAST(:created AS TIMESTAMPTZ), "
                             "CAST(:created AS TIMESTAMPTZ) + interval '10 minutes', :stars)"), rows)
    writer.dispose()
    mapping = SourceMapping.model_validate({"tables": {"tickets": {"select": (
        "SELECT case_no AS ticket_id, 'consultation' AS kind, 'phone' AS channel, dept AS department_id, "
        "NULL AS agent_id, created AS opened_at, answered AS first_response_at, answered AS resolved_at, "
        "NULL::timestamptz AS closed_at, 'resolved' AS status, stars AS satisfaction, "
        "answered AS revisited_at, 0 AS reopened_count FROM crm_cases")}}})
    source = Source(source_engine(url, timezone="Asia/Shanghai"), mapping, zone="Asia/Shanghai")
    rules = [r for r in effective_rules(load_config(None).thresholds)
             if r.rule_id == "cs.satisfaction_rate" and r.entity_type == "department"]
    october = parse_period("2026-10")
    computation = rule_engine.compute(source, rules, october, now=datetime(2026, 11, 2),
                                      available={"tickets", "departments"})
    results = rule_engine.collect_samples(source, computation, rule_engine.evaluate(computation))
    (department,) = [r for r in results if r.entity_type == "department"]
    assert (department.population, department.observed) == (25, 0.8)
    assert department.evidence["sample_ids"] == [f"OCT{i:02d}" for i in range(5)]
    quality = run_data_quality(source, ["tickets"], october, now=datetime(2026, 11, 2))
    # October's rows only, in local time; no ticket names an agent, so the staff table this source
    # lacks is no problem.
    assert {r.population for r in quality if "reason" not in r.facts} == {25}
    assert [(r.rule_id, r.entity_id) for r in quality if r.is_problem] == []
    with source.engine.connect() as conn:
        t = source.table("tickets")
        opened = conn.execute(sa.select(t.c.opened_at).where(t.c.ticket_id == "OCT00")).scalar_one()
    assert opened == datetime(2026, 10, 31, 23, 30) and opened.tzinfo is None
    source.engine.dispose()
