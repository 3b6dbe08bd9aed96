"""Voice menu: the answer to the last step kept for repeated deliveries; an
index for the sweep that finds calls whose status callback never came.

Revision ID: 0002
Revises: 0004
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reply_twiml', sa.Text(), nullable=True))
        batch_op.create_index('ix_calls_status_updated', ['status', 'updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_status_updated')
        batch_op.drop_column('reply_twiml')
        batch_op.drop_column('reply_seq')
