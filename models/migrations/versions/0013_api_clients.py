"""The JSON API: clients with hashed tokens, answers kept for Idempotency-Key, a listing's external
reference, and indexes for ``updated_since``.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'api_clients',
        sa.Column('id', ID, nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('scope', sa.String(length=32), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'write')", name=op.f('ck_api_clients_scope')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_clients')),
        sa.UniqueConstraint('name', name=op.f('uq_api_clients_name')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_api_clients_token_hash')),
    )
    op.create_table(
        'api_idempotency_keys',
        sa.Column('id', ID, nullable=False),
        sa.Column('client', sa.String(length=120), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('location', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_idempotency_keys')),
        sa.UniqueConstraint('client', 'key', name='uq_api_idempotency_keys_client_key'),
    )
    op.create_index(op.f('ix_api_idempotency_keys_created_at'), 'api_idempotency_keys', ['created_at'], unique=False)
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_ref', sa.String(length=120), nullable=True))
        batch_op.create_index('ix_listings_updated_at', ['updated_at'], unique=False)
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.create_index('ix_matches_updated_at', ['updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index('ix_matches_updated_at')
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index('ix_listings_updated_at')
        batch_op.drop_column('external_ref')
    op.drop_index(op.f('ix_api_idempotency_keys_created_at'), table_name='api_idempotency_keys')
    op.drop_table('api_idempotency_keys')
    op.drop_table('api_clients')
