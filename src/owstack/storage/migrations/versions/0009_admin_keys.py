"""Admin keys: `api_keys.admin`, true for keys made by `owstack keys create --admin` (the console's admins).

Revision ID: 0009_admin_keys
Revises: 0008_rollups
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_admin_keys"
down_revision = "0008_rollups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("admin")
