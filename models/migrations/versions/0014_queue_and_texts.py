"""Queue: a helper who said yes and a resident in trouble come first, also for items already waiting;
a text nobody could place names the item a broker reads it on.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.create_index('ix_messages_callback_id', ['callback_id'], unique=False)
    # Texts already waiting on an item: the item's own message.
    op.execute("UPDATE messages SET callback_id = (SELECT c.id FROM callbacks c WHERE c.message_id = messages.id "
               "AND c.reason = 'unrecognised_message' ORDER BY c.id LIMIT 1) WHERE direction = 'inbound'")
    op.execute("UPDATE callbacks SET priority = 40 WHERE reason IN ('match_accepted', 'problem_reported') "
               "AND status IN ('open', 'claimed')")


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_callback_id')
        batch_op.drop_column('callback_id')
    op.execute("UPDATE callbacks SET priority = 10 WHERE reason = 'match_accepted' AND status IN ('open', 'claimed')")
    op.execute("UPDATE callbacks SET priority = 30 WHERE reason = 'problem_reported' AND status IN ('open', 'claimed')")
