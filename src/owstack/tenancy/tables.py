"""The key tables (SQLAlchemy Core), as created by migration `0002_keys`.

api_keys            one row per key: the SHA-256 digest of its secret, never the secret
api_key_revision    one row (id 1): bumped by every create and revoke, read by each gateway
                    process at most once a second to drop its key cache (see keycache.py)
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("secret_sha256", sa.LargeBinary(32), nullable=False),
    #: comma-separated layer names; NULL: every layer the tenant may use
    sa.Column("layers", sa.String(200), nullable=True),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    #: the console's admins (`owstack keys create --admin`, migration 0009_admin_keys)
    sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
)

api_key_revision = sa.Table(
    "api_key_revision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)
