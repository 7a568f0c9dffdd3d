"""the web's sign-in requests, counted by every process on the store

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

- oa_web_login_requests: each request for a sign-in link within the rate limits' window (the
  SHA-256 of the address asked for, known or not, and the client's network address), so that
  several processes serving the web on one store share the limits. Rows older than the window
  are deleted as requests come.
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oa_web_login_requests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('client', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oa_web_login_requests'))
    )
    op.create_index('ix_oa_web_login_requests_address', 'oa_web_login_requests', ['address_hash', 'requested_at'],
                    unique=False)
    op.create_index('ix_oa_web_login_requests_client', 'oa_web_login_requests', ['client', 'requested_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_oa_web_login_requests_client', table_name='oa_web_login_requests')
    op.drop_index('ix_oa_web_login_requests_address', table_name='oa_web_login_requests')
    op.drop_table('oa_web_login_requests')
