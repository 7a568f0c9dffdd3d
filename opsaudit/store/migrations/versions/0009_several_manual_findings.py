"""several manual findings on one entity in one month

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

- oa_findings: the key (rule, entity, period) stays unique for the rules' findings, so that a
  rerun of a period updates its finding and never duplicates it, but no longer binds the manual
  ones: an auditor finds several problems in one department in a month. The unique constraint
  becomes a unique index that leaves out rule `manual`.

SQLite drops a constraint only by copying the table (batch). The copy is oa_findings alone, every
row as it is; it has no triggers of its own. The tables that refer to it (oa_finding_events with
its append-only triggers, oa_major_handling, oa_finding_notices) are not copied and keep their
rows and triggers: the store's SQLite connections leave foreign keys unenforced (opsaudit.db), so
dropping the old table deletes nothing that refers to it. (Were they enforced, the drop would
cascade to the events, the events' no-delete trigger would refuse it, and the upgrade would
change nothing.)
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_KEY = ['rule_id', 'entity_type', 'entity_id', 'period']
_RULES_ONLY = sa.text("rule_id <> 'manual'")


def upgrade() -> None:
    with op.batch_alter_table('oa_findings', schema=None) as batch_op:
        batch_op.drop_constraint('uq_oa_findings_key', type_='unique')
        batch_op.create_index('uq_oa_findings_key', _KEY, unique=True, sqlite_where=_RULES_ONLY,
                              postgresql_where=_RULES_ONLY)


def downgrade() -> None:
    # Fails on the key while a month holds several manual findings on one entity.
    with op.batch_alter_table('oa_findings', schema=None) as batch_op:
        batch_op.drop_index('uq_oa_findings_key')
        batch_op.create_unique_constraint('uq_oa_findings_key', _KEY)
