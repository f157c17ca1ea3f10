"""The pin tables (SQLAlchemy Core), as created by migration `0007_mcp_pins`.

mcp_pins            one row per (server, tool, definition digest) ever seen: its state (pending, approved,
                    superseded), the canonical definition, the content findings, who decided and when
mcp_pin_revision    one row (id 1): bumped by every approval, read by each gateway process once a second
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

mcp_pins = sa.Table(
    "mcp_pins",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("server", sa.String(64), nullable=False),
    sa.Column("tool", sa.String(128), nullable=False),
    #: SHA-256 (hex) of the canonical definition
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    #: the canonical definition (JSON text), to show and to diff against
    sa.Column("definition", sa.Text, nullable=False),
    #: [{"category", "severity", "rule", "field"}] found in the definition when first seen
    sa.Column("findings", sa.Text, nullable=False),
    #: the approved tools of the server that vanished when this one appeared (a possible rename)
    sa.Column("renamed_from", sa.String(400)),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("decided_by", sa.String(128)),
    sa.UniqueConstraint("server", "tool", "digest", name="uq_mcp_pins_server_tool_digest"),
)

mcp_pin_revision = sa.Table(
    "mcp_pin_revision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)
