"""Matches: markers for reminders, feedback and problems; who closed a match and why.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminder_sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('feedback_requested_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('problem_reported_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('close_reason', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_matches_status_respond_by', ['status', 'respond_by'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index('ix_matches_status_respond_by')
        batch_op.drop_column('close_reason')
        batch_op.drop_column('closed_by')
        batch_op.drop_column('problem_reported_at')
        batch_op.drop_column('feedback_requested_at')
        batch_op.drop_column('reminder_sent_at')
