"""index for the inbox across every grid: all incidents newest first (admins, wide scopes)

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_incidents_occurred_id", "incidents", ["occurred_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_incidents_occurred_id", "incidents")
