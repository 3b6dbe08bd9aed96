"""Queue: a helper who said yes and a resident in trouble come first, also for items already waiting.

Revision ID: 0014
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op


revision = '0014'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE callbacks SET priority = 40 WHERE reason IN ('match_accepted', 'problem_reported') "
               "AND status IN ('open', 'claimed')")


def downgrade() -> None:
    op.execute("UPDATE callbacks SET priority = 10 WHERE reason = 'match_accepted' AND status IN ('open', 'claimed')")
    op.execute("UPDATE callbacks SET priority = 30 WHERE reason = 'problem_reported' AND status IN ('open', 'claimed')")
