"""create the audit store

Revision ID: 0001
Revises: 
Create Date: 2026-11-21

The store opsaudit starts with. Finding events are append-only: a trigger refuses updates on both
SQLite and PostgreSQL.
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


_APPEND_ONLY_SQLITE = (
    "CREATE TRIGGER oa_finding_events_no_update BEFORE UPDATE ON oa_finding_events "
    "BEGIN SELECT RAISE(ABORT, 'oa_finding_events is append-only'); END",
)
_APPEND_ONLY_POSTGRES = (
    "CREATE FUNCTION oa_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$",
    "CREATE TRIGGER oa_finding_events_no_update BEFORE UPDATE ON oa_finding_events "
    "FOR EACH ROW EXECUTE FUNCTION oa_refuse_change()",
)


def _create_append_only_trigger() -> None:
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": _APPEND_ONLY_SQLITE, "postgresql": _APPEND_ONLY_POSTGRES}.get(dialect, ())
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    op.create_table('oa_audit_runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('audit', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('period_start', sa.DateTime(), nullable=False),
    sa.Column('period_end', sa.DateTime(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=True),
    sa.Column('config_hash', sa.String(length=32), nullable=False),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_audit_runs'))
    )
    with op.batch_alter_table('oa_audit_runs', schema=None) as batch_op:
        batch_op.create_index('ix_oa_audit_runs_audit_period', ['audit', 'period'], unique=False)

    op.create_table('oa_outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dedupe_key', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('attachments', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_outbox')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_oa_outbox_dedupe_key'))
    )
    op.create_table('oa_check_results',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('audit_run_id', sa.String(length=36), nullable=False),
    sa.Column('rule_id', sa.String(length=64), nullable=False),
    sa.Column('area', sa.String(length=32), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=255), nullable=False),
    sa.Column('department_id', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=True),
    sa.Column('observed', sa.Float(), nullable=True),
    sa.Column('target', sa.Float(), nullable=True),
    sa.Column('population', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['audit_run_id'], ['oa_audit_runs.id'], name=op.f('fk_oa_check_results_audit_run_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_check_results')),
    sa.UniqueConstraint('audit_run_id', 'rule_id', 'entity_type', 'entity_id', name='uq_oa_check_results_key')
    )
    op.create_table('oa_findings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('audit', sa.String(length=32), nullable=False),
    sa.Column('audit_run_id', sa.String(length=36), nullable=False),
    sa.Column('area', sa.String(length=32), nullable=False),
    sa.Column('rule_id', sa.String(length=64), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=255), nullable=False),
    sa.Column('department_id', sa.String(length=64), nullable=True),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('observed', sa.Float(), nullable=True),
    sa.Column('target', sa.Float(), nullable=True),
    sa.Column('population', sa.Integer(), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('plan_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('owner_id', sa.String(length=64), nullable=True),
    sa.Column('recurring', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['audit_run_id'], ['oa_audit_runs.id'], name=op.f('fk_oa_findings_audit_run_id')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_findings')),
    sa.UniqueConstraint('rule_id', 'entity_type', 'entity_id', 'period', name='uq_oa_findings_key')
    )
    with op.batch_alter_table('oa_findings', schema=None) as batch_op:
        batch_op.create_index('ix_oa_findings_run', ['audit_run_id'], unique=False)
        batch_op.create_index('ix_oa_findings_status', ['status'], unique=False)

    op.create_table('oa_reports',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('audit_run_id', sa.String(length=36), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['audit_run_id'], ['oa_audit_runs.id'], name=op.f('fk_oa_reports_audit_run_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_reports')),
    sa.UniqueConstraint('audit_run_id', 'language', 'format', name='uq_oa_reports_key')
    )
    op.create_table('oa_samples',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('audit_run_id', sa.String(length=36), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('department_id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('ticket_id', sa.String(length=64), nullable=False),
    sa.Column('draw_order', sa.Integer(), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['audit_run_id'], ['oa_audit_runs.id'], name=op.f('fk_oa_samples_audit_run_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_samples')),
    sa.UniqueConstraint('audit_run_id', 'ticket_id', name='uq_oa_samples_ticket')
    )
    op.create_table('oa_finding_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('finding_id', sa.String(length=36), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=True),
    sa.Column('to_status', sa.String(length=24), nullable=True),
    sa.Column('audit_run_id', sa.String(length=36), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['oa_findings.id'], name=op.f('fk_oa_finding_events_finding_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_finding_events'))
    )
    with op.batch_alter_table('oa_finding_events', schema=None) as batch_op:
        batch_op.create_index('ix_oa_finding_events_finding', ['finding_id'], unique=False)

    _create_append_only_trigger()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS oa_finding_events_no_update ON oa_finding_events")
        op.execute("DROP FUNCTION IF EXISTS oa_refuse_change()")
    with op.batch_alter_table('oa_finding_events', schema=None) as batch_op:
        batch_op.drop_index('ix_oa_finding_events_finding')

    op.drop_table('oa_finding_events')
    op.drop_table('oa_samples')
    op.drop_table('oa_reports')
    with op.batch_alter_table('oa_findings', schema=None) as batch_op:
        batch_op.drop_index('ix_oa_findings_status')
        batch_op.drop_index('ix_oa_findings_run')

    op.drop_table('oa_findings')
    op.drop_table('oa_check_results')
    op.drop_table('oa_outbox')
    with op.batch_alter_table('oa_audit_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_oa_audit_runs_audit_period')

    op.drop_table('oa_audit_runs')
