"""index for the incident inbox: a grid's incidents newest first

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_incidents_grid_occurred", "incidents", ["grid", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_incidents_grid_occurred", "incidents")
