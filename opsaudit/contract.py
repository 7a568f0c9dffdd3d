"""The operational data contract, version 1 (shared/data-contract.md), as SQLAlchemy tables.

These definitions create demo and test databases and are the yardstick for checking a source.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, MetaData, String, Table, Text

CONTRACT_VERSION = 1

metadata = MetaData()


def _id(name: str, **kw: object) -> Column:
    return Column(name, String(64), **kw)


departments = Table(
    "departments", metadata,
    _id("department_id", primary_key=True),
    Column("name", Text, nullable=False),
    _id("parent_id", nullable=True),
    _id("head_id", nullable=True),
)

staff = Table(
    "staff", metadata,
    _id("staff_id", primary_key=True),
    Column("name", Text, nullable=False),
    _id("department_id", nullable=False),
    Column("role", String(32), nullable=False),
    Column("email", Text, nullable=True),
    Column("active", Boolean, nullable=False),
)

tickets = Table(
    "tickets", metadata,
    _id("ticket_id", primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("channel", String(32), nullable=False),
    _id("department_id", nullable=False),
    _id("agent_id", nullable=True),
    Column("opened_at", DateTime, nullable=False, index=True),
    Column("first_response_at", DateTime, nullable=True),
    Column("resolved_at", DateTime, nullable=True),
    Column("closed_at", DateTime, nullable=True),
    Column("status", String(32), nullable=False),
    Column("satisfaction", Integer, nullable=True),
    Column("revisited_at", DateTime, nullable=True),
    Column("reopened_count", Integer, nullable=False, default=0),
)

qa_reviews = Table(
    "qa_reviews", metadata,
    _id("review_id", primary_key=True),
    _id("ticket_id", nullable=False, index=True),
    _id("reviewer_id", nullable=False),
    Column("reviewed_at", DateTime, nullable=False),
    Column("attitude_score", Float, nullable=False),
    Column("resolution_score", Float, nullable=False),
    Column("compliant", Boolean, nullable=False),
    Column("notes", Text, nullable=True),
)

plans = Table(
    "plans", metadata,
    _id("plan_id", primary_key=True),
    Column("level", String(32), nullable=False),
    Column("period", String(16), nullable=False),
    _id("department_id", nullable=False),
    _id("owner_id", nullable=False),
    Column("title", Text, nullable=False),
    Column("due_at", DateTime, nullable=False),
    Column("submitted_at", DateTime, nullable=True),
    _id("approved_by", nullable=True),
    Column("approved_at", DateTime, nullable=True),
    Column("status", String(32), nullable=False),
    Column("strategic_goal", Text, nullable=True),
    Column("market_research", Text, nullable=True),
)

plan_targets = Table(
    "plan_targets", metadata,
    _id("plan_id", primary_key=True),
    Column("metric", String(128), primary_key=True),
    Column("unit", String(32), nullable=True),
    Column("baseline", Float, nullable=True),
    Column("target", Float, nullable=False),
    Column("actual", Float, nullable=True),
    Column("higher_is_better", Boolean, nullable=False, default=True),
)

plan_signoffs = Table(
    "plan_signoffs", metadata,
    _id("plan_id", primary_key=True),
    _id("department_id", primary_key=True),
    Column("required", Boolean, nullable=False),
    _id("signed_by", nullable=True),
    Column("signed_at", DateTime, nullable=True),
)

plan_adjustments = Table(
    "plan_adjustments", metadata,
    _id("adjustment_id", primary_key=True),
    _id("plan_id", nullable=False),
    _id("requested_by", nullable=False),
    Column("requested_at", DateTime, nullable=False),
    Column("reason", Text, nullable=True),
    _id("approved_by", nullable=True),
    Column("approved_at", DateTime, nullable=True),
    Column("effective_at", DateTime, nullable=False),
)

tasks = Table(
    "tasks", metadata,
    _id("task_id", primary_key=True),
    _id("plan_id", nullable=True, index=True),
    _id("department_id", nullable=False),
    _id("owner_id", nullable=True),
    Column("title", Text, nullable=False),
    Column("priority", String(32), nullable=False),
    Column("planned_start", DateTime, nullable=True),
    Column("due_at", DateTime, nullable=False, index=True),
    Column("started_at", DateTime, nullable=True),
    Column("completed_at", DateTime, nullable=True, index=True),
    Column("status", String(32), nullable=False),
    Column("expected_output", Float, nullable=True),
    Column("actual_output", Float, nullable=True),
    Column("budget_hours", Float, nullable=True),
    Column("actual_hours", Float, nullable=True),
    Column("budget_cost", Float, nullable=True),
    Column("actual_cost", Float, nullable=True),
)

analysis_reports = Table(
    "analysis_reports", metadata,
    _id("report_id", primary_key=True),
    _id("department_id", nullable=False),
    _id("author_id", nullable=False),
    Column("kind", String(32), nullable=False),
    Column("period", String(16), nullable=False),
    Column("due_at", DateTime, nullable=False),
    Column("submitted_at", DateTime, nullable=True),
    Column("methods", Text, nullable=True),
    Column("recommendations", Text, nullable=True),
    _id("reviewed_by", nullable=True),
)

reported_metrics = Table(
    "reported_metrics", metadata,
    # The contract's key is (report_id, metric, department_id), but department_id is nullable (the
    # whole company), which a primary key cannot be; dq.unique checks the key instead.
    _id("report_id", nullable=False, index=True),
    Column("metric", String(64), nullable=False),
    _id("department_id", nullable=True),
    Column("period", String(16), nullable=False),
    Column("value", Float, nullable=False),
)

TABLE_NAMES: tuple[str, ...] = tuple(metadata.tables)

# Lower-case enumerations; a value outside a set is a data-quality finding.
ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("staff", "role"): ("executive", "manager", "deputy_manager", "supervisor", "specialist", "agent", "auditor"),
    ("tickets", "kind"): ("consultation", "complaint", "application"),
    ("tickets", "channel"): ("phone", "chat", "email", "web", "onsite", "other"),
    ("tickets", "status"): ("open", "in_progress", "resolved", "closed"),
    ("plans", "level"): ("annual", "quarterly", "monthly"),
    ("plans", "status"): ("draft", "submitted", "approved", "rejected", "closed"),
    ("tasks", "priority"): ("low", "normal", "high", "critical"),
    ("tasks", "status"): ("not_started", "in_progress", "done", "cancelled"),
    ("analysis_reports", "kind"): ("weekly", "monthly", "quarterly", "annual", "adhoc"),
    ("reported_metrics", "metric"): (
        "ticket_count", "complaint_count", "satisfaction_rate", "first_response_rate", "task_count",
        "task_on_time_rate",
    ),
}

# References between contract tables: (table, column) -> (table, column).
REFERENCES: dict[tuple[str, str], tuple[str, str]] = {
    ("departments", "parent_id"): ("departments", "department_id"),
    ("departments", "head_id"): ("staff", "staff_id"),
    ("staff", "department_id"): ("departments", "department_id"),
    ("tickets", "department_id"): ("departments", "department_id"),
    ("tickets", "agent_id"): ("staff", "staff_id"),
    ("qa_reviews", "ticket_id"): ("tickets", "ticket_id"),
    ("qa_reviews", "reviewer_id"): ("staff", "staff_id"),
    ("plans", "department_id"): ("departments", "department_id"),
    ("plans", "owner_id"): ("staff", "staff_id"),
    ("plans", "approved_by"): ("staff", "staff_id"),
    ("plan_targets", "plan_id"): ("plans", "plan_id"),
    ("plan_signoffs", "plan_id"): ("plans", "plan_id"),
    ("plan_signoffs", "department_id"): ("departments", "department_id"),
    ("plan_signoffs", "signed_by"): ("staff", "staff_id"),
    ("plan_adjustments", "plan_id"): ("plans", "plan_id"),
    ("plan_adjustments", "requested_by"): ("staff", "staff_id"),
    ("plan_adjustments", "approved_by"): ("staff", "staff_id"),
    ("tasks", "plan_id"): ("plans", "plan_id"),
    ("tasks", "department_id"): ("departments", "department_id"),
    ("tasks", "owner_id"): ("staff", "staff_id"),
    ("analysis_reports", "department_id"): ("departments", "department_id"),
    ("analysis_reports", "author_id"): ("staff", "staff_id"),
    ("analysis_reports", "reviewed_by"): ("staff", "staff_id"),
    ("reported_metrics", "report_id"): ("analysis_reports", "report_id"),
    ("reported_metrics", "department_id"): ("departments", "department_id"),
}

# The contract's key of each table (reported_metrics' includes a nullable column).
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "departments": ("department_id",),
    "staff": ("staff_id",),
    "tickets": ("ticket_id",),
    "qa_reviews": ("review_id",),
    "plans": ("plan_id",),
    "plan_targets": ("plan_id", "metric"),
    "plan_signoffs": ("plan_id", "department_id"),
    "plan_adjustments": ("adjustment_id",),
    "tasks": ("task_id",),
    "analysis_reports": ("report_id",),
    "reported_metrics": ("report_id", "metric", "department_id"),
}

# Time order: (table, later column, earlier column); the later may not precede the earlier.
TIME_ORDER: tuple[tuple[str, str, str], ...] = (
    ("tickets", "first_response_at", "opened_at"),
    ("tickets", "resolved_at", "opened_at"),
    ("tickets", "closed_at", "opened_at"),
    ("tasks", "completed_at", "started_at"),
)

# The column whose newest value shows a table is fresh, for the freshness expectation.
FRESHNESS_COLUMNS: dict[str, str] = {"tickets": "opened_at", "tasks": "due_at"}

# Numeric ranges: (table, column) -> (min, max); None is unbounded.
RANGES: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("tickets", "satisfaction"): (1, 5),
    ("tickets", "reopened_count"): (0, None),
    ("qa_reviews", "attitude_score"): (0, 100),
    ("qa_reviews", "resolution_score"): (0, 100),
    ("tasks", "expected_output"): (0, None),
    ("tasks", "actual_output"): (0, None),
    ("tasks", "budget_hours"): (0, None),
    ("tasks", "actual_hours"): (0, None),
    ("tasks", "budget_cost"): (0, None),
    ("tasks", "actual_cost"): (0, None),
}


def contract_kind(column: Column) -> str:
    """The contract's type word for a column: text, ts, num, int or bool."""
    if isinstance(column.type, DateTime):
        return "ts"
    if isinstance(column.type, Boolean):
        return "bool"
    if isinstance(column.type, Integer):
        return "int"
    if isinstance(column.type, Float):
        return "num"
    return "text"
