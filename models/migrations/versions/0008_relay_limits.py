"""Relays: every text passed on between matched neighbours, with what was cut, replaced or refused.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('relays',
    sa.Column('id', _ID, nullable=False),
    sa.Column('match_id', _ID, nullable=False),
    sa.Column('from_resident_id', _ID, nullable=False),
    sa.Column('to_resident_id', _ID, nullable=False),
    sa.Column('inbound_message_id', _ID, nullable=False),
    sa.Column('outbound_message_id', _ID, nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('relayed', sa.Text(), nullable=True),
    sa.Column('cut', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('cleaned', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("outcome IN ('relayed', 'over_cap')", name=op.f('ck_relays_outcome')),
    sa.ForeignKeyConstraint(['match_id'], ['matches.id'], name=op.f('fk_relays_match_id_matches')),
    sa.ForeignKeyConstraint(['from_resident_id'], ['residents.id'], name=op.f('fk_relays_from_resident_id_residents')),
    sa.ForeignKeyConstraint(['to_resident_id'], ['residents.id'], name=op.f('fk_relays_to_resident_id_residents')),
    sa.ForeignKeyConstraint(['inbound_message_id'], ['messages.id'],
                            name=op.f('fk_relays_inbound_message_id_messages')),
    sa.ForeignKeyConstraint(['outbound_message_id'], ['messages.id'],
                            name=op.f('fk_relays_outbound_message_id_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relays')),
    sa.UniqueConstraint('inbound_message_id', name=op.f('uq_relays_inbound_message_id')),
    )
    with op.batch_alter_table('relays', schema=None) as batch_op:
        batch_op.create_index('ix_relays_pair', ['from_resident_id', 'to_resident_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_relays_match_id'), ['match_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('relays', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relays_match_id'))
        batch_op.drop_index('ix_relays_pair')
    op.drop_table('relays')
