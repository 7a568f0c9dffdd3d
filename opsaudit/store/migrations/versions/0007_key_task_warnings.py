"""key tasks watched daily: each warning sent, once per task, state and due date

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

- oa_key_task_warnings: each warning the daily key-task watch sent (seed 000 §4.2.2), claimed by
  its unique key (task, state, due date) so that a second run, even a concurrent one, sends
  nothing again; with whom it told. A warning is not a finding: nothing in oa_findings.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oa_key_task_warnings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('task_id', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('department_id', sa.Text(), nullable=True),
    sa.Column('owner_id', sa.Text(), nullable=True),
    sa.Column('told', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_key_task_warnings')),
    sa.UniqueConstraint('task_id', 'state', 'due_at', name='uq_oa_key_task_warnings_key')
    )


def downgrade() -> None:
    op.drop_table('oa_key_task_warnings')
