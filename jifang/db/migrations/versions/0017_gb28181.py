"""GB/T 28181 devices (SIP registration, keepalive) and the channels their catalogs list

Revision ID: 0017
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gb28181_devices",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_encrypted", sa.String(500), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("last_keepalive_at", sa.DateTime(), nullable=True),
        sa.Column("manufacturer", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("firmware", sa.String(100), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "gb28181_channels",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("device_id", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ptz_type", sa.Integer(), nullable=True),
        sa.Column("parent", sa.String(64), nullable=False),
        sa.Column("manufacturer", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_gb28181_channels_device", "gb28181_channels", ["device_id"])


def downgrade() -> None:
    op.drop_index("ix_gb28181_channels_device", "gb28181_channels")
    op.drop_table("gb28181_channels")
    op.drop_table("gb28181_devices")
