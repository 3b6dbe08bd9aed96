"""Matches: when and by whom a broker ended the passing on of texts and calls between the two neighbours.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('relay_ended_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('relay_ended_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_matches_relay_ended_by_id_brokers'), 'brokers',
                                    ['relay_ended_by_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_matches_relay_ended_by_id_brokers'), type_='foreignkey')
        batch_op.drop_column('relay_ended_by_id')
        batch_op.drop_column('relay_ended_at')
