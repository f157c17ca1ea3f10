"""Stored responses of the Responses API (`store: true`, `previous_response_id`, GET/DELETE by id).

One row per response, scoped to its tenant: the response object and the conversation it continues (the
items a follow-up with `previous_response_id` builds on), both zlib-compressed JSON. Rows expire after
`responses.retention_days` and are deleted with their tenant (`owstack tenants erase`).

Revision ID: 0006_responses
Revises: 0005_ledger_journal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_responses"
down_revision = "0005_ledger_journal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("previous_response_id", sa.String(128), nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("items", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_responses"),
    )
    op.create_index("ix_responses_tenant", "responses", ["tenant"])
    op.create_index("ix_responses_expires_at", "responses", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_expires_at", table_name="responses")
    op.drop_index("ix_responses_tenant", table_name="responses")
    op.drop_table("responses")
