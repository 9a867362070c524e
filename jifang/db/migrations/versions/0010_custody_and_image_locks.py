"""custody rows (which edge agent held which camera when) and per-camera image lock status

Revision ID: 0010
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "custody",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("camera_id", sa.String(20), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("alive_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_custody_camera_start", "custody", ["camera_id", "started_at"])
    op.create_index("ix_custody_agent_open", "custody", ["agent_id", "ended_at"])
    with op.batch_alter_table("lock_status") as batch:
        batch.add_column(sa.Column("image_objects", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("image_min_margin_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("image_held", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("image_deleted_before_floor", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("image_checked_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lock_status") as batch:
        for column in ("image_checked_at", "image_deleted_before_floor", "image_held", "image_min_margin_seconds",
                       "image_objects"):
            batch.drop_column(column)
    op.drop_index("ix_custody_agent_open", "custody")
    op.drop_index("ix_custody_camera_start", "custody")
    op.drop_table("custody")
