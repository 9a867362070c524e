"""the registry is the one source of truth: cameras carry site, recognition, password reference, who manages
them (the configuration file or the registry) and a change time the agents poll; grids and team members carry
who manages them

Revision ID: 0011
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("site", sa.String(64), nullable=True))
        batch.add_column(sa.Column("recognize", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("password_ref", sa.String(300), nullable=False, server_default=""))
        batch.add_column(sa.Column("managed_by", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("grids") as batch:
        batch.add_column(sa.Column("managed_by", sa.String(16), nullable=False, server_default=""))
    with op.batch_alter_table("team_members") as batch:
        batch.add_column(sa.Column("managed_by", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("team_members") as batch:
        batch.drop_column("managed_by")
    with op.batch_alter_table("grids") as batch:
        batch.drop_column("managed_by")
    with op.batch_alter_table("cameras") as batch:
        for name in ("updated_at", "managed_by", "password_ref", "recognize", "site"):
            batch.drop_column(name)
