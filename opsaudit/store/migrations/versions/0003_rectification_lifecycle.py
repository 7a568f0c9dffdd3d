"""the rectification lifecycle: evidence on events, major-problem handling, deadline notices

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

- oa_finding_events: the evidence (a path or URL) an action was taken with; events can no longer
  be deleted either (0001 already refuses updates).
- oa_major_handling: a major finding's special meeting and rectification task force.
- oa_finding_notices: each reminder and escalation step of a deadline, once (unique key).
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_NO_DELETE = {
    "sqlite": "CREATE TRIGGER oa_finding_events_no_delete BEFORE DELETE ON oa_finding_events "
              "BEGIN SELECT RAISE(ABORT, 'oa_finding_events is append-only'); END",
    # oa_refuse_change() comes from 0001.
    "postgresql": "CREATE TRIGGER oa_finding_events_no_delete BEFORE DELETE ON oa_finding_events "
                  "FOR EACH ROW EXECUTE FUNCTION oa_refuse_change()",
}


def upgrade() -> None:
    # A plain ADD COLUMN: a batch copy of the table on SQLite would drop its append-only triggers.
    op.add_column('oa_finding_events', sa.Column('evidence', sa.Text(), nullable=True))
    statement = _NO_DELETE.get(op.get_bind().dialect.name)
    if statement:
        op.execute(statement)
    op.create_table('oa_major_handling',
    sa.Column('finding_id', sa.String(length=36), nullable=False),
    sa.Column('meeting_on', sa.Date(), nullable=True),
    sa.Column('meeting_note', sa.Text(), nullable=True),
    sa.Column('task_force_lead', sa.String(length=64), nullable=True),
    sa.Column('task_force_members', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['oa_findings.id'], name=op.f('fk_oa_major_handling_finding_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('finding_id', name=op.f('pk_oa_major_handling'))
    )
    op.create_table('oa_finding_notices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('finding_id', sa.String(length=36), nullable=False),
    sa.Column('step', sa.String(length=48), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['oa_findings.id'], name=op.f('fk_oa_finding_notices_finding_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_finding_notices')),
    sa.UniqueConstraint('finding_id', 'step', 'deadline', name='uq_oa_finding_notices_key')
    )


def downgrade() -> None:
    op.drop_table('oa_finding_notices')
    op.drop_table('oa_major_handling')
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS oa_finding_events_no_delete ON oa_finding_events")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS oa_finding_events_no_delete")
    op.drop_column('oa_finding_events', 'evidence')
