"""A company's own names, mapped onto the contract: the rules run on them unchanged."""

from __future__ import annotations

from datetime import datetime, timedelta

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
    assert check_source(Source(engine, mapping), ("tickets",)) == [
        "crm_cases.rating: missing column (contract tickets.satisfaction)"]
