"""Background responses' ownership: the gateway process running one, its lease, and a cancel asked elsewhere.

`responses.owner` is the instance id of the process that runs a background response (`background: true`);
it renews `heartbeat_at` and `lease_until` for all its running rows at once, every third of
`responses.background_lease_s`. A `queued`/`in_progress` row whose lease has run out is read as `failed`
(its gateway stopped before it finished). `cancel_requested_at` is set by a replica asked to cancel a
response another one runs; the owner sees it at its next heartbeat. Rows of ordinary responses, and rows
written before this revision, have none of them (NULL).

Revision ID: 0010_background_lease
Revises: 0009_admin_keys
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_background_lease"
down_revision = "0009_admin_keys"
branch_labels = None
depends_on = None

COLUMNS = ("owner", "heartbeat_at", "lease_until", "cancel_requested_at")


def upgrade() -> None:
    op.add_column("responses", sa.Column("owner", sa.String(128), nullable=True))
    op.add_column("responses", sa.Column("heartbeat_at", sa.Double, nullable=True))
    op.add_column("responses", sa.Column("lease_until", sa.Double, nullable=True))
    op.add_column("responses", sa.Column("cancel_requested_at", sa.Double, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
