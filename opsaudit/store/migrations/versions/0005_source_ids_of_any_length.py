"""ids from the operational data are text of any length

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

The contract's ids are opaque text; a real register names its departments by sponsors' full
names, past VARCHAR(64). On PostgreSQL the columns that hold them become TEXT (a change of the
catalogue, no rewrite of the rows). SQLite keeps any length whatever a column declares: its
stores stay as they are (see schema.source_id).
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# (table, column, length it had)
COLUMNS = (
    ('oa_check_results', 'entity_id', 255), ('oa_check_results', 'department_id', 64),
    ('oa_findings', 'entity_id', 255), ('oa_findings', 'department_id', 64), ('oa_findings', 'owner_id', 64),
    ('oa_finding_events', 'actor', 64),
    ('oa_major_handling', 'task_force_lead', 64), ('oa_major_handling', 'updated_by', 64),
    ('oa_samples', 'department_id', 64), ('oa_samples', 'agent_id', 64), ('oa_samples', 'channel', 32),
    ('oa_samples', 'ticket_id', 64),
    ('oa_reports', 'reviewed_by', 64),
    ('oa_report_events', 'actor', 64),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, column, _ in COLUMNS:
        op.alter_column(table, column, type_=sa.Text())


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, column, length in COLUMNS:
        op.alter_column(table, column, type_=sa.String(length))
