"""Calls: menu steps update the row in place (HOT), without touching any index.

A menu step rewrites the call's step, answer and ``updated_at``. With
``updated_at`` in an index every step wrote a new entry into each of the
table's indexes; the sweep for calls whose status callback never came only
needs the calls still in progress, which a partial index on an unchanging
column finds as well. Free space on each page (fillfactor) lets the new
version of the row stay on its page.

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0002'
branch_labels = None
depends_on = None

IN_PROGRESS = sa.text("status = 'in_progress'")


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_status_updated')
        batch_op.create_index('ix_calls_in_progress', ['created_at'], unique=False,
                              postgresql_where=IN_PROGRESS, sqlite_where=IN_PROGRESS)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE calls SET (fillfactor = 50)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE calls RESET (fillfactor)')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_in_progress', postgresql_where=IN_PROGRESS, sqlite_where=IN_PROGRESS)
        batch_op.create_index('ix_calls_status_updated', ['status', 'updated_at'], unique=False)
