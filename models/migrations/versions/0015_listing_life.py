"""Listing life: each listing's check-in clock, and the check-ins asked of residents.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('touched_at', sa.DateTime(timezone=True), nullable=True))
    # Listings from before: their clock runs from their last change.
    op.execute("UPDATE listings SET touched_at = COALESCE(updated_at, created_at)")
    op.create_table(
        'listing_checkins',
        sa.Column('id', _ID, nullable=False),
        sa.Column('listing_id', _ID, nullable=False),
        sa.Column('resident_id', _ID, nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('asked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('answer', sa.String(length=16), nullable=True),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("channel IN ('sms', 'voice', 'none')", name=op.f('ck_listing_checkins_channel')),
        sa.CheckConstraint("answer IS NULL OR answer IN ('yes', 'no', 'silence', 'overtaken')",
                           name=op.f('ck_listing_checkins_answer')),
        sa.ForeignKeyConstraint(['listing_id'], ['listings.id'], name=op.f('fk_listing_checkins_listing_id_listings')),
        sa.ForeignKeyConstraint(['resident_id'], ['residents.id'],
                                name=op.f('fk_listing_checkins_resident_id_residents')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_listing_checkins')),
    )
    with op.batch_alter_table('listing_checkins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_listing_checkins_listing_id'), ['listing_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_listing_checkins_resident_id'), ['resident_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('listing_checkins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_listing_checkins_resident_id'))
        batch_op.drop_index(batch_op.f('ix_listing_checkins_listing_id'))
    op.drop_table('listing_checkins')
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_column('touched_at')
