"""Small builders for contract rows, and a helper that runs rules on them.

Every builder fills the contract's columns with values that break no rule, so a scenario states
only what matters to it: ``data.ticket("T1", "D1", satisfaction=2)``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa

from opsaudit.checks import engine as eng
from opsaudit.checks.results import CheckResult
from opsaudit.checks.scope import EVERYTHING, Scope
from opsaudit.checks.spec import Rule, effective_rules
from opsaudit.config.loader import load_config
from opsaudit.config.models import Thresholds
from opsaudit.contract import metadata
from opsaudit.periods import parse_period
from opsaudit.source import Source

# The month the customer-service and execution scenarios audit, and the quarter of the
# planning and data-analysis ones; "now" is the day after each period ends.
MONTH, MONTH_NOW = "2026-10", datetime(2026, 11, 2)
QUARTER, QUARTER_NOW = "2026Q3", datetime(2026, 10, 2)
MID_MONTH = datetime(2026, 10, 15, 10, 0)


class Dataset:
    """Rows per contract table, collected in memory and inserted in one transaction."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        unknown = set(row) - set(metadata.tables[table].columns.keys())
        assert not unknown, f"{table} has no column {sorted(unknown)}"
        self.rows[table].append(row)
        return row

    def insert(self, engine: sa.Engine, tables: set[str] | None = None) -> None:
        """Create the contract tables (or only `tables`) and insert the rows, one executemany each."""
        created = [t for t in metadata.sorted_tables if tables is None or t.name in tables]
        metadata.create_all(engine, tables=created)
        with engine.begin() as conn:
            for table in created:
                if self.rows.get(table.name):
                    conn.execute(table.insert(), self.rows[table.name])

    # --- directory ---------------------------------------------------------------------------

    def department(self, department_id: str, **overrides: Any) -> dict[str, Any]:
        return self.add("departments", {"department_id": department_id, "name": f"Dept {department_id}",
                                         "parent_id": None, "head_id": None} | overrides)

    def staff(self, staff_id: str, department_id: str = "D1", role: str = "agent", **overrides: Any) -> dict[str, Any]:
        return self.add("staff", {"staff_id": staff_id, "name": f"Staff {staff_id}", "department_id": department_id,
                                  "role": role, "email": None, "active": True} | overrides)

    # --- customer service --------------------------------------------------------------------

    def ticket(self, ticket_id: str, department_id: str = "D1", agent_id: str | None = None, **overrides: Any) \
            -> dict[str, Any]:
        """A resolved phone ticket, answered in 10 minutes, rated 5 and followed up the next day."""
        opened = overrides.get("opened_at", MID_MONTH)
        resolved = overrides.get("resolved_at", opened + timedelta(hours=2))
        row = {"ticket_id": ticket_id, "kind": "consultation", "channel": "phone", "department_id": department_id,
               "agent_id": agent_id, "opened_at": opened, "first_response_at": opened + timedelta(minutes=10),
               "resolved_at": resolved, "closed_at": None, "status": "resolved", "satisfaction": 5,
               "revisited_at": (resolved or opened) + timedelta(days=1), "reopened_count": 0}
        return self.add("tickets", row | overrides)

    def review(self, review_id: str, ticket_id: str, **overrides: Any) -> dict[str, Any]:
        return self.add("qa_reviews", {"review_id": review_id, "ticket_id": ticket_id, "reviewer_id": "QA1",
                                       "reviewed_at": MID_MONTH + timedelta(days=1), "attitude_score": 90.0,
                                       "resolution_score": 90.0, "compliant": True, "notes": None} | overrides)

    # --- execution ---------------------------------------------------------------------------

    def task(self, task_id: str, department_id: str = "D1", **overrides: Any) -> dict[str, Any]:
        """A normal task done on time in the month, on budget and with its expected output."""
        return self.add("tasks", {
            "task_id": task_id, "plan_id": None, "department_id": department_id, "owner_id": "O1",
            "title": f"Task {task_id}", "priority": "normal", "planned_start": None,
            "due_at": datetime(2026, 10, 20), "started_at": datetime(2026, 10, 5),
            "completed_at": datetime(2026, 10, 18), "status": "done", "expected_output": 10.0,
            "actual_output": 10.0, "budget_hours": 10.0, "actual_hours": 10.0, "budget_cost": 100.0,
            "actual_cost": 100.0} | overrides)

    # --- planning ----------------------------------------------------------------------------

    def plan(self, plan_id: str, department_id: str = "D1", **overrides: Any) -> dict[str, Any]:
        """A monthly plan for 2026-09, submitted on time in the quarter and approved by a manager."""
        return self.add("plans", {
            "plan_id": plan_id, "level": "monthly", "period": "2026-09", "department_id": department_id,
            "owner_id": "O1", "title": f"Plan {plan_id}", "due_at": datetime(2026, 8, 31),
            "submitted_at": datetime(2026, 8, 25), "approved_by": "MGR", "approved_at": datetime(2026, 8, 28),
            "status": "approved", "strategic_goal": "growth", "market_research": "MR-1"} | overrides)

    def target(self, plan_id: str, metric: str, **overrides: Any) -> dict[str, Any]:
        return self.add("plan_targets", {"plan_id": plan_id, "metric": metric, "unit": None, "baseline": 100.0,
                                         "target": 110.0, "actual": None, "higher_is_better": True} | overrides)

    def signoff(self, plan_id: str, department_id: str, **overrides: Any) -> dict[str, Any]:
        return self.add("plan_signoffs", {"plan_id": plan_id, "department_id": department_id, "required": True,
                                          "signed_by": "S1", "signed_at": datetime(2026, 8, 26)} | overrides)

    def adjustment(self, adjustment_id: str, plan_id: str, **overrides: Any) -> dict[str, Any]:
        return self.add("plan_adjustments", {
            "adjustment_id": adjustment_id, "plan_id": plan_id, "requested_by": "O1",
            "requested_at": datetime(2026, 8, 10), "reason": "market changed", "approved_by": "MGR",
            "approved_at": datetime(2026, 8, 12), "effective_at": datetime(2026, 8, 15)} | overrides)

    # --- data analysis -----------------------------------------------------------------------

    def report(self, report_id: str, department_id: str = "D1", **overrides: Any) -> dict[str, Any]:
        """A monthly report on 2026-08, submitted on time in the quarter, complete and reviewed."""
        return self.add("analysis_reports", {
            "report_id": report_id, "department_id": department_id, "author_id": "AU1", "kind": "monthly",
            "period": "2026-08", "due_at": datetime(2026, 9, 10), "submitted_at": datetime(2026, 9, 8),
            "methods": "cohort analysis", "recommendations": "hire two agents", "reviewed_by": "REV"} | overrides)

    def reported(self, report_id: str, metric: str, value: float, department_id: str | None = "D1",
                 period: str = "2026-08") -> dict[str, Any]:
        return self.add("reported_metrics", {"report_id": report_id, "metric": metric,
                                              "department_id": department_id, "period": period, "value": value})


@cache
def default_rules() -> tuple[Rule, ...]:
    return tuple(effective_rules(load_config(None).thresholds))


def rules_with(thresholds: Thresholds) -> tuple[Rule, ...]:
    return tuple(effective_rules(thresholds))


def run_rule(engine: sa.Engine, rule_id: str, entity_type: str | None = None, *, period: str = MONTH,
             now: datetime = MONTH_NOW, rules: tuple[Rule, ...] | None = None,
             available: set[str] | None = None, scope: Scope = EVERYTHING) -> list[CheckResult]:
    """Compute, judge and sample one rule (one entity type, or all of the rule's) on the database,
    within `scope`."""
    rules = rules if rules is not None else default_rules()
    picked = [r for r in rules if r.rule_id == rule_id and entity_type in (None, r.entity_type)]
    assert picked, f"no rule {rule_id} for {entity_type}"
    source = Source(engine)
    computation = eng.compute(source, picked, parse_period(period), now=now,
                              available=set(metadata.tables) if available is None else available,
                              all_rules={r.rule_id: r for r in rules}, scope=scope)
    return eng.collect_samples(source, computation, eng.evaluate(computation))


def by_entity(results: list[CheckResult], entity_type: str | None = None) -> dict[str, CheckResult]:
    """The results of departments, agents and records keyed by entity id (one entity type, when
    given); the company results are left out (see company_results)."""
    keyed: dict[str, CheckResult] = {}
    for result in results:
        if result.entity_type == "company" or entity_type not in (None, result.entity_type):
            continue
        assert result.entity_id not in keyed, f"two results for {result.entity_id}"
        keyed[result.entity_id] = result
    return keyed


def company_results(results: list[CheckResult]) -> list[CheckResult]:
    """The whole company's results: a department rule's, and the count of a per-record rule."""
    return [result for result in results if result.entity_type == "company"]
