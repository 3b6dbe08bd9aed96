"""Reports: residents' marks for matches done, SMS segments and call durations, a viewer role, and
the indexes a report over a period reads.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0008'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'satisfaction',
        sa.Column('id', _ID, nullable=False),
        sa.Column('match_id', _ID, nullable=False),
        sa.Column('resident_id', _ID, nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('mark', sa.Integer(), nullable=True),
        sa.Column('asked_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('mark IS NULL OR mark BETWEEN 1 AND 5', name=op.f('ck_satisfaction_mark')),
        sa.ForeignKeyConstraint(['match_id'], ['matches.id'], name=op.f('fk_satisfaction_match_id_matches')),
        sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_satisfaction_resident_id_residents')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_satisfaction')),
        sa.UniqueConstraint('match_id', 'resident_id', name='uq_satisfaction_match_resident'),
    )
    with op.batch_alter_table('satisfaction', schema=None) as batch_op:
        batch_op.create_index('ix_satisfaction_answered_at', ['answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_satisfaction_resident_id'), ['resident_id'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('segments', sa.Integer(), nullable=True))
        batch_op.create_index('ix_messages_created_at', ['created_at'], unique=False)
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('duration_seconds', sa.Integer(), nullable=True))
        batch_op.create_index('ix_calls_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_calls_broker_listing', ['listing_id', 'created_at'], unique=False,
                              postgresql_where=sa.text("purpose = 'broker_bridge'"),
                              sqlite_where=sa.text("purpose = 'broker_bridge'"))
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.create_index('ix_listings_created_at', ['created_at'], unique=False)
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.create_index('ix_callbacks_created_at', ['created_at'], unique=False)
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.create_index('ix_matches_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_matches_done_at', ['done_at'], unique=False)
    with op.batch_alter_table('brokers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_brokers_role'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_brokers_role'), "role IN ('broker', 'coordinator', 'viewer')")


def downgrade() -> None:
    with op.batch_alter_table('brokers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_brokers_role'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_brokers_role'), "role IN ('broker', 'coordinator')")
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index('ix_matches_done_at')
        batch_op.drop_index('ix_matches_created_at')
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.drop_index('ix_callbacks_created_at')
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index('ix_listings_created_at')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_broker_listing')
        batch_op.drop_index('ix_calls_created_at')
        batch_op.drop_column('duration_seconds')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_created_at')
        batch_op.drop_column('segments')
    with op.batch_alter_table('satisfaction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_satisfaction_resident_id'))
        batch_op.drop_index('ix_satisfaction_answered_at')
    op.drop_table('satisfaction')
