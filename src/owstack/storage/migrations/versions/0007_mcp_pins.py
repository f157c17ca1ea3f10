"""MCP tool pins (owstack.mcp): `mcp_pins` and the `mcp_pin_revision` counter.

Revision ID: 0007_mcp_pins
Revises: 0006_responses
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_mcp_pins"
down_revision = "0006_responses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_pins",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("findings", sa.Text, nullable=False),
        sa.Column("renamed_from", sa.String(400)),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decided_by", sa.String(128)),
        sa.UniqueConstraint("server", "tool", "digest", name="uq_mcp_pins_server_tool_digest"),
    )
    revision_table = op.create_table(
        "mcp_pin_revision",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(revision_table, [{"id": 1, "revision": 0}])


def downgrade() -> None:
    op.drop_table("mcp_pin_revision")
    op.drop_table("mcp_pins")
