"""The ledger's journal: batches the ledger process has accepted and not yet moved into `ledger_rows`.

Each row holds one batch as it came from the gateway (JSON: the column names and the rows), so that
accepting a batch costs one INSERT, whatever its size; `owstack.metering.journal` moves batches into
`ledger_rows` when the gateway's traffic pauses, when the journal grows past its limit, on flush, and
before any read of the ledger (docs/metering.md, "The journal").

Revision ID: 0005_ledger_journal
Revises: 0004_request_id_unindexed
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_ledger_journal"
down_revision = "0004_request_id_unindexed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_journal",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False, autoincrement=True),
        sa.Column("appended_at", sa.Double, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_journal"),
    )


def downgrade() -> None:
    # batches still journaled are moved into ledger_rows first, or the downgrade would lose them
    from owstack.metering.journal import expand
    from owstack.metering.ledger import Dims

    expand(op.get_bind(), Dims(), own_transactions=False)
    op.drop_table("ledger_journal")
