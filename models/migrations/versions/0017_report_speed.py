"""Reports: the figures rolled up per local day (days rolled up, sums per group, residents reached),
and a listing's messages found by an index.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'report_rolled_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('matches', sa.Integer(), nullable=False),
        sa.Column('contacts', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_report_rolled_days')),
    )
    op.create_table(
        'report_days',
        sa.Column('id', ID, nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('grouping', sa.String(length=16), nullable=False),
        sa.Column('grp', sa.String(length=32), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (
            'requests', 'offers', 'matches_proposed', 'matches_done', 'callbacks', 'satisfaction_answers',
            'mark_sum', 'sms_segments', 'call_minutes')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_days')),
    )
    op.create_index('ix_report_days_day', 'report_days', ['day', 'grouping'], unique=False)
    op.create_table(
        'report_reach',
        sa.Column('id', ID, nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('grouping', sa.String(length=16), nullable=False),
        sa.Column('grp', sa.String(length=32), nullable=True),
        sa.Column('residents', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_reach')),
    )
    op.create_index('ix_report_reach_day', 'report_reach', ['day', 'grouping'], unique=False)
    op.create_index('ix_messages_listing', 'messages', ['listing_id'], unique=False,
                    postgresql_where=sa.text('listing_id IS NOT NULL'), sqlite_where=sa.text('listing_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_messages_listing', table_name='messages')
    op.drop_index('ix_report_reach_day', table_name='report_reach')
    op.drop_table('report_reach')
    op.drop_index('ix_report_days_day', table_name='report_days')
    op.drop_table('report_days')
    op.drop_table('report_rolled_days')
