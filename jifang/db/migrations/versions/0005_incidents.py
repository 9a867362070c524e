"""incidents: watchlists, sightings, incidents, their steps, recipients and deliveries

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("plate", sa.String(16), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("subcategory", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "watchlist_embeddings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("entry_id", sa.Integer(), nullable=False, index=True),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("subcategory", sa.String(16), nullable=False),
        sa.Column("gbt31000_code", sa.String(32), nullable=True),
        sa.Column("grid", sa.String(32), nullable=False, index=True),
        sa.Column("camera_id", sa.String(20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "incident_steps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), nullable=False, index=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("note", sa.String(1000), nullable=False),
        sa.Column("assignee", sa.String(64), nullable=False),
    )
    op.create_table(
        "incident_recipients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), nullable=False, index=True),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), nullable=False, index=True),
        sa.Column("channel", sa.String(300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=False),
    )
    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("camera_id", sa.String(20), nullable=False, index=True),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("text", sa.String(32), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("color", sa.String(8), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("crop_key", sa.String(255), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("retain_until", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("sightings", "deliveries", "incident_recipients", "incident_steps", "incidents",
                  "watchlist_embeddings", "watchlist_entries"):
        op.drop_table(table)
