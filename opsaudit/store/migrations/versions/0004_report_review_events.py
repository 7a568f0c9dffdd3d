"""the review gate's history: every submission, approval, rejection and sending of a report

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

- oa_report_events: one row per step of a run's report through the audit lead's review
  (oa_reports keeps each file's latest status and review).
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oa_report_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('audit_run_id', sa.String(length=36), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['audit_run_id'], ['oa_audit_runs.id'], name=op.f('fk_oa_report_events_audit_run_id'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_report_events'))
    )
    op.create_index('ix_oa_report_events_run', 'oa_report_events', ['audit_run_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_oa_report_events_run', table_name='oa_report_events')
    op.drop_table('oa_report_events')
