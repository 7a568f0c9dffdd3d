"""runs know their process, findings keep their facts, the outbox schedules retries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

- oa_audit_runs: the process (host, pid) of a running audit, so that a run whose process is gone
  can be marked abandoned; at most one running run per audit and period (a partial unique index).
- oa_findings: the facts a finding's texts are rendered from, in the reader's language; the
  latest period in which a persisting per-record problem was seen; stored texts become optional.
- oa_outbox: when a message was last tried and when it may be tried again (backoff).
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    with op.batch_alter_table('oa_audit_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('pid', sa.Integer(), nullable=True))
        batch_op.create_index('uq_oa_audit_runs_running', ['audit', 'period'], unique=True,
                              sqlite_where=_RUNNING, postgresql_where=_RUNNING)
    with op.batch_alter_table('oa_findings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('facts', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('last_period', sa.String(length=32), nullable=True))
        batch_op.alter_column('title', existing_type=sa.Text(), nullable=True)
        batch_op.alter_column('description', existing_type=sa.Text(), nullable=True)
    with op.batch_alter_table('oa_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('oa_outbox', schema=None) as batch_op:
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('last_attempt_at')
    with op.batch_alter_table('oa_findings', schema=None) as batch_op:
        batch_op.alter_column('description', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('title', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('last_period')
        batch_op.drop_column('facts')
    with op.batch_alter_table('oa_audit_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_oa_audit_runs_running')
        batch_op.drop_column('pid')
        batch_op.drop_column('host')
