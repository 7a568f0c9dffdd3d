"""A small company and findings in its store, for the lifecycle, tracking and scores tests.

HQ: executives E1, E2. OPS (head M1): the operations manager M1, the deputy M2, the auditors A1
and A2, and A3, an auditor who left. CS1 (head H1): owners O1, O2 and X1, who left. CS2 (head H2):
O3. Everyone active has an e-mail address s<id>@example.com.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from opsaudit.checks.results import CheckResult, Outcome, Severity
from opsaudit.config.models import Deadlines
from opsaudit.periods import parse_period
from opsaudit.reports.recipients import Directory
from opsaudit.settings import load_settings
from opsaudit.source import Source
from opsaudit.store import findings as store_findings
from opsaudit.store import runs
from opsaudit.store.finding_views import get_finding
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import finding_events, findings
from tests.builders import Dataset

ZONE = ZoneInfo("Asia/Shanghai")
FOUND = datetime(2026, 11, 2, 9, 0, tzinfo=ZONE)
PEOPLE = (("E1", "HQ", "executive"), ("E2", "HQ", "executive"), ("M1", "OPS", "manager"),
          ("M2", "OPS", "deputy_manager"), ("A1", "OPS", "auditor"), ("A2", "OPS", "auditor"),
          ("A3", "OPS", "auditor"), ("H1", "CS1", "manager"), ("O1", "CS1", "agent"), ("O2", "CS1", "agent"),
          ("X1", "CS1", "agent"), ("H2", "CS2", "manager"), ("O3", "CS2", "agent"))
LEFT = {"A3", "X1"}
# What submitting the plan of an important or major finding states (seed 000 §6.3).
CAUSE = {"cause": "夜班人手不足", "prevention": "按话务量排班"}


def email(staff_id: str) -> str:
    return f"s{staff_id.lower()}@example.com"


def company(engine: sa.Engine) -> None:
    """The directory tables of the company above, and the audit store, in one database."""
    data = Dataset()
    for department, name, head in (("HQ", "总部", "E1"), ("OPS", "运营部", "M1"), ("CS1", "客服一部", "H1"),
                                   ("CS2", "客服二部", "H2")):
        data.department(department, name=name, head_id=head, parent_id=None if department == "HQ" else "HQ")
    for staff_id, department, role in PEOPLE:
        data.staff(staff_id, department, role, name=f"员工{staff_id}", email=email(staff_id),
                   active=staff_id not in LEFT)
    data.insert(engine, {"departments", "staff"})
    upgrade(engine)


def directory(engine: sa.Engine) -> Directory:
    return Directory.load(Source(engine), load_settings())


def problem(entity: str = "CS1", severity: str = "general", *, owner: str = "O1", rule: str = "cs.satisfaction_rate",
            department: str | None = "") -> CheckResult:
    """A failed department result of `rule` on `entity` (in department `entity` unless given; None:
    in none, as a company result), owned by `owner`."""
    department = entity if department == "" else department
    return CheckResult(rule, "customer_service", "department", entity, Outcome.FAILED, Severity(severity),
                       department_id=department, owner_id=owner, observed=0.8, target=0.9, population=100,
                       facts={"period": "2026-10", "department_id": department, "department_name": department,
                              "observed": 0.8, "target": 0.9, "population": 100, "failures": 20, "gap": -0.1,
                              "unit": "rate", "op": "at_least"},
                       evidence={"query": "SELECT 1", "sample_ids": []})


def raise_findings(engine: sa.Engine, results: list[CheckResult], *, period: str = "2026-10",
                   found_at: datetime = FOUND) -> list[str]:
    """Record the results as findings of a finished cs-monthly run of `period`; their ids, in order."""
    with engine.begin() as conn:
        run = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period(period), parameters={},
                             config_hash="test")
        runs.finish_run(conn, run.id, status="succeeded")
        store_findings.record_findings(conn, run, results, found_at=found_at, deadlines=Deadlines(),
                                       recurrence_periods=2, config_hash="test", zone=ZONE)
        rows = conn.execute(sa.select(findings.c.id, findings.c.entity_id, findings.c.rule_id)
                            .where(findings.c.audit_run_id == run.id)).all()
    ids = {(row.rule_id, row.entity_id): row.id for row in rows}
    return [ids[(result.rule_id, result.entity_id)] for result in results]


def snapshot(engine: sa.Engine, finding_id: str) -> tuple[dict, int]:
    """The finding's row and how many events it has: what a refused action must leave alone."""
    with engine.connect() as conn:
        row = dict(get_finding(conn, finding_id))
        events = conn.execute(sa.select(sa.func.count()).select_from(finding_events)
                              .where(finding_events.c.finding_id == finding_id)).scalar_one()
    return row, events


def set_status(engine: sa.Engine, finding_id: str, status: str) -> None:
    """Put a finding in a state directly (the findings table itself keeps no history)."""
    with engine.begin() as conn:
        conn.execute(findings.update().where(findings.c.id == finding_id).values(status=status))
