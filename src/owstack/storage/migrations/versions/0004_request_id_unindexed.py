"""Drop the index on `ledger_rows.request_id`.

No reader looks a row up by request id (reports, savings, utilization and budgets all select by time and
by the dims), and keeping that index current was about a sixth of what each ledger INSERT cost SQLite
(docs/metering.md, "The throughput target"). A lookup by request id now scans the table; an operator who
needs it often can add one under a name of their own (`CREATE INDEX my_request_id ON ledger_rows
(request_id)`).

Revision ID: 0004_request_id_unindexed
Revises: 0003_ledger_compact
"""

from __future__ import annotations

from alembic import op

revision = "0004_request_id_unindexed"
down_revision = "0003_ledger_compact"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_ledger_rows_request_id", table_name="ledger_rows")


def downgrade() -> None:
    op.create_index("ix_ledger_rows_request_id", "ledger_rows", ["request_id"])
