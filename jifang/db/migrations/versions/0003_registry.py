"""registry: areas, grids, team members, cameras

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "areas",
        sa.Column("code", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent", sa.String(12), nullable=True),
    )
    op.create_table(
        "grids",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("village", sa.String(12), nullable=True),
    )
    op.create_table(
        "team_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("grid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("channels", sa.String(500), nullable=False),
    )
    op.create_index("ix_team_members_grid", "team_members", ["grid"])
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("grid", sa.String(32), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("onvif_endpoint", sa.String(200), nullable=False),
        sa.Column("main_rtsp_url", sa.String(500), nullable=False),
        sa.Column("sub_rtsp_url", sa.String(500), nullable=False),
        sa.Column("snapshot_uri", sa.String(500), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_encrypted", sa.String(500), nullable=False),
        sa.Column("manufacturer", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("firmware", sa.String(100), nullable=False),
        sa.Column("serial", sa.String(100), nullable=False),
        sa.Column("signage", sa.Boolean(), nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("registered_by", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_detail", sa.String(500), nullable=False),
        sa.Column("status_at", sa.DateTime(), nullable=True),
        sa.Column("clock_offset_seconds", sa.Float(), nullable=True),
    )


def downgrade() -> None:
    for table in ("cameras", "team_members", "grids", "areas"):
        op.drop_table(table)
