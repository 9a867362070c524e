"""audit log: the purpose, the object's grid (scope of reading) and the validated source IP as columns;
login limits: one counter row per user name+address and per address, taken atomically before a password check

Revision ID: 0013
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("grid", sa.String(32), nullable=True))
        batch.add_column(sa.Column("purpose", sa.String(500), nullable=False, server_default=""))
        batch.add_column(sa.Column("source_ip", sa.String(64), nullable=False, server_default=""))
    op.create_index("ix_audit_log_grid_id", "audit_log", ["grid", "id"])
    op.create_table(
        "login_limits",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_limits")
    op.drop_index("ix_audit_log_grid_id", "audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("source_ip")
        batch.drop_column("purpose")
        batch.drop_column("grid")
