"""who acted through which door: the channel of every event; the web's sign-in links and sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

- oa_finding_events: `channel` (web, cli or system) and, for the command line, the operating-system
  user who ran it. Plain ADD COLUMNs: a batch copy of the table on SQLite would drop its
  append-only triggers. Events written before this revision are never rewritten (the triggers
  refuse it); they read as `system` when the actor is the system and `cli` otherwise, the only
  doors there were.
- oa_web_logins: one-time sign-in links, kept only as the SHA-256 of their token.
- oa_web_sessions: signed-in browsers, kept only as the SHA-256 of their session id.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('oa_finding_events', sa.Column('channel', sa.String(length=8), nullable=True))
    op.add_column('oa_finding_events', sa.Column('os_user', sa.Text(), nullable=True))
    op.create_table('oa_web_logins',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_oa_web_logins'))
    )
    op.create_table('oa_web_sessions',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_oa_web_sessions'))
    )


def downgrade() -> None:
    op.drop_table('oa_web_sessions')
    op.drop_table('oa_web_logins')
    op.drop_column('oa_finding_events', 'os_user')
    op.drop_column('oa_finding_events', 'channel')
