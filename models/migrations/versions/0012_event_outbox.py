"""Events for the online marketplace, kept until delivered.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa



revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'events',
        sa.Column('id', ID, nullable=False),
        sa.Column('webhook_id', sa.String(length=40), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('order_key', sa.String(length=40), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=32), server_default='pending', nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("type IN ('listing.created', 'listing.updated', 'match.created', 'match.updated', "
                           "'resident.erased')", name=op.f('ck_events_type')),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name=op.f('ck_events_status')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
        sa.UniqueConstraint('webhook_id', name=op.f('uq_events_webhook_id')),
    )
    op.create_index('ix_events_order_key_id', 'events', ['order_key', 'id'], unique=False)
    op.create_index('ix_events_status_next_attempt_at', 'events', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_events_status_next_attempt_at', table_name='events')
    op.drop_index('ix_events_order_key_id', table_name='events')
    op.drop_table('events')
