"""The console's own table (migration 0008_rollups): the audit chain checks it ran and what they found.

console_verifications   one row per `verify` the console started: when, by whom, intact or not, how many
                        records and streams, and the first damage found (or "intact")
"""

from __future__ import annotations

import sqlalchemy as sa

from owstack.storage.schema import metadata

console_verifications = sa.Table(
    "console_verifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("ok", sa.Boolean),
    sa.Column("records", sa.BigInteger),
    sa.Column("streams", sa.Integer),
    sa.Column("summary", sa.Text),
    sa.Column("actor", sa.String(200), nullable=False),
)
