"""The audit store's tables. The schema is versioned by the Alembic migrations beside this file.

Tables carry an ``oa_`` prefix so the store can share the operational database.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeEngine

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
})

VERSION_TABLE = "oa_alembic_version"


def source_id(sqlite_length: int) -> TypeEngine:
    """An id from the operational data (a record, a department, a person): opaque text of any
    length (data-contract.md), such as a sponsor's full name. SQLite keeps any length whatever a
    column declares, so its stores keep the VARCHAR they were created with instead of a table copy
    (which would drop the append-only triggers)."""
    return Text().with_variant(String(sqlite_length), "sqlite")

audit_runs = Table(
    "oa_audit_runs", metadata,
    Column("id", String(36), primary_key=True),
    Column("audit", String(32), nullable=False),
    Column("kind", String(16), nullable=False, doc="periodic, spot_check or special"),
    Column("period", String(32), nullable=False),
    Column("period_start", DateTime, nullable=False, doc="local time, inclusive"),
    Column("period_end", DateTime, nullable=False, doc="local time, exclusive"),
    Column("parameters", JSON, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("status", String(16), nullable=False, doc="running, succeeded, failed, interrupted or abandoned"),
    Column("seed", BigInteger, nullable=True),
    Column("config_hash", String(32), nullable=False),
    Column("flow_run_id", String(64), nullable=True),
    Column("summary", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("host", String(255), nullable=True, doc="where a running audit's process runs"),
    Column("pid", Integer, nullable=True),
    Index("ix_oa_audit_runs_audit_period", "audit", "period"),
    # The same audit and period never runs twice at once.
    Index("uq_oa_audit_runs_running", "audit", "period", unique=True,
          sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'")),
)

check_results = Table(
    "oa_check_results", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("audit_run_id", String(36), ForeignKey("oa_audit_runs.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("area", String(32), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", source_id(255), nullable=False),
    Column("department_id", source_id(64), nullable=True),
    Column("outcome", String(24), nullable=False, doc="passed, warning, failed or insufficient_data"),
    Column("severity", String(16), nullable=True),
    Column("observed", Float, nullable=True),
    Column("target", Float, nullable=True),
    Column("population", Integer, nullable=True),
    Column("details", JSON, nullable=False),
    UniqueConstraint("audit_run_id", "rule_id", "entity_type", "entity_id", name="uq_oa_check_results_key"),
)

findings = Table(
    "oa_findings", metadata,
    Column("id", String(36), primary_key=True),
    Column("audit", String(32), nullable=False),
    Column("audit_run_id", String(36), ForeignKey("oa_audit_runs.id"), nullable=False),
    Column("area", String(32), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("period", String(32), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", source_id(255), nullable=False),
    Column("department_id", source_id(64), nullable=True),
    Column("severity", String(16), nullable=False),
    Column("status", String(24), nullable=False),
    Column("title", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("observed", Float, nullable=True),
    Column("target", Float, nullable=True),
    Column("population", Integer, nullable=True),
    Column("evidence", JSON, nullable=False),
    Column("found_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("plan_due_at", DateTime(timezone=True), nullable=True),
    Column("owner_id", source_id(64), nullable=True),
    Column("recurring", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("facts", JSON, nullable=True, doc="what the texts are rendered from, in the reader's language"),
    Column("last_period", String(32), nullable=True, doc="latest period a persisting problem was seen in"),
    # A rule's problem is one finding per entity and period (a rerun updates it); an auditor may
    # record several manual findings on one entity in a month.
    Index("uq_oa_findings_key", "rule_id", "entity_type", "entity_id", "period", unique=True,
          sqlite_where=text("rule_id <> 'manual'"), postgresql_where=text("rule_id <> 'manual'")),
    Index("ix_oa_findings_status", "status"),
    Index("ix_oa_findings_run", "audit_run_id"),
)

finding_events = Table(
    "oa_finding_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("finding_id", String(36), ForeignKey("oa_findings.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", source_id(64), nullable=False, doc="a staff_id, or 'system'"),
    Column("action", String(32), nullable=False),
    Column("from_status", String(24), nullable=True),
    Column("to_status", String(24), nullable=True),
    Column("audit_run_id", String(36), nullable=True),
    Column("note", Text, nullable=True),
    Column("data", JSON, nullable=False),
    Column("evidence", Text, nullable=True, doc="a path or URL given with the action"),
    # Null only on events older than store revision 0006 (see finding_views.event_channel).
    Column("channel", String(8), nullable=True, default="system", doc="web, cli or system"),
    Column("os_user", Text, nullable=True, doc="the operating-system user of a cli event"),
    Index("ix_oa_finding_events_finding", "finding_id"),
)

# Seed 000 §6.2: a major problem gets a special meeting and a rectification task force.
major_handling = Table(
    "oa_major_handling", metadata,
    Column("finding_id", String(36), ForeignKey("oa_findings.id", ondelete="CASCADE"), primary_key=True),
    Column("meeting_on", Date, nullable=True),
    Column("meeting_note", Text, nullable=True),
    Column("task_force_lead", source_id(64), nullable=True),
    Column("task_force_members", JSON, nullable=True, doc="staff_ids, the lead first"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", source_id(64), nullable=False),
)

# Each reminder and escalation step of a finding's deadline, once: the unique key makes a second
# tracking run of the day (or a concurrent one) record and send nothing again.
finding_notices = Table(
    "oa_finding_notices", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("finding_id", String(36), ForeignKey("oa_findings.id", ondelete="CASCADE"), nullable=False),
    Column("step", String(48), nullable=False, doc="e.g. remind:7, remind_plan:1, escalate:executives"),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("finding_id", "step", "deadline", name="uq_oa_finding_notices_key"),
)

# Each warning of the daily key-task watch (seed 000 §4.2.2), once per task, state and due date:
# the unique key makes a second run (even a concurrent one) send nothing again. Not a finding.
key_task_warnings = Table(
    "oa_key_task_warnings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Text, nullable=False),
    Column("state", String(16), nullable=False, doc="overdue or due_soon"),
    Column("due_at", DateTime(timezone=True), nullable=False, doc="the task's due date when warned"),
    Column("priority", String(16), nullable=False),
    Column("department_id", Text, nullable=True),
    Column("owner_id", Text, nullable=True),
    Column("told", JSON, nullable=False, doc="staff_ids (or addresses) of the people told"),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("task_id", "state", "due_at", name="uq_oa_key_task_warnings_key"),
)

# The web's one-time sign-in links and sessions: only digests of their secrets are kept.
web_logins = Table(
    "oa_web_logins", metadata,
    Column("token_hash", String(64), primary_key=True, doc="SHA-256 of the link's token"),
    Column("staff_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

web_sessions = Table(
    "oa_web_sessions", metadata,
    Column("id_hash", String(64), primary_key=True, doc="SHA-256 of the session id in the cookie"),
    Column("staff_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
)

# Each request for a sign-in link within the rate limits' window, so that every process serving
# the web on this store counts the same requests; older rows are deleted as new ones come.
web_login_requests = Table(
    "oa_web_login_requests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("address_hash", String(64), nullable=False, doc="SHA-256 of the address asked for, known or not"),
    Column("client", Text, nullable=False, doc="the network address the request came from"),
    Index("ix_oa_web_login_requests_address", "address_hash", "requested_at"),
    Index("ix_oa_web_login_requests_client", "client", "requested_at"),
)

samples = Table(
    "oa_samples", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("audit_run_id", String(36), ForeignKey("oa_audit_runs.id", ondelete="CASCADE"), nullable=False),
    Column("period", String(32), nullable=False),
    Column("department_id", source_id(64), nullable=False),
    Column("agent_id", source_id(64), nullable=True),
    Column("channel", source_id(32), nullable=False),
    Column("ticket_id", source_id(64), nullable=False),
    Column("draw_order", Integer, nullable=False),
    Column("seed", BigInteger, nullable=False),
    UniqueConstraint("audit_run_id", "ticket_id", name="uq_oa_samples_ticket"),
)

reports = Table(
    "oa_reports", metadata,
    Column("id", String(36), primary_key=True),
    Column("audit_run_id", String(36), ForeignKey("oa_audit_runs.id", ondelete="CASCADE"), nullable=False),
    Column("language", String(8), nullable=False),
    Column("format", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("status", String(16), nullable=False, doc="draft, approved, rejected or sent"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("reviewed_by", source_id(64), nullable=True),
    Column("reviewed_at", DateTime(timezone=True), nullable=True),
    Column("review_note", Text, nullable=True),
    UniqueConstraint("audit_run_id", "language", "format", name="uq_oa_reports_key"),
)

# The review gate of seed 000 §5.3, step by step: each submission, approval, rejection and sending
# of a run's report (oa_reports keeps only the latest state of each file).
report_events = Table(
    "oa_report_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("audit_run_id", String(36), ForeignKey("oa_audit_runs.id", ondelete="CASCADE"), nullable=False),
    Column("language", String(8), nullable=True, doc="the report's language; none for the whole run"),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", source_id(64), nullable=False, doc="a staff_id, or 'system'"),
    Column("action", String(16), nullable=False, doc="submitted, approved, rejected or sent"),
    Column("note", Text, nullable=True),
    Column("data", JSON, nullable=False),
    Index("ix_oa_report_events_run", "audit_run_id"),
)

outbox = Table(
    "oa_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(255), nullable=False, unique=True),
    Column("kind", String(16), nullable=False, doc="report, alert or notice"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("recipients", JSON, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=True),
    Column("attachments", JSON, nullable=False),
    Column("status", String(16), nullable=False, doc="pending, sent or failed"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
)
