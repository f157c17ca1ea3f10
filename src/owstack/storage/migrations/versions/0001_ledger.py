"""The ledger: one row per request.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("layer", sa.String(16)),
        sa.Column("backend", sa.String(64)),
        sa.Column("engine", sa.String(32)),
        sa.Column("model", sa.String(256)),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("finish_reason", sa.String(32)),
        sa.Column("client_disconnected", sa.Boolean, nullable=False),
        sa.Column("reasoning_policy", sa.String(32)),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("tokens_reported", sa.Boolean, nullable=False),
        sa.Column("tokens_estimated", sa.Boolean, nullable=False),
        sa.Column("latency_s", sa.Double),
        sa.Column("ttft_s", sa.Double),
        sa.Column("attempts", sa.SmallInteger, nullable=False),
        sa.Column("fallbacks", sa.SmallInteger, nullable=False),
        sa.Column("attempt_log", sa.JSON),
        sa.Column("cost_usd", sa.Double),
        sa.Column("cost_kind", sa.String(16), nullable=False),
        sa.Column("capital_usd", sa.Double),
        sa.Column("utilization", sa.Double),
        sa.Column("counterfactual_usd", sa.Double),
        sa.Column("counterfactual_model", sa.String(128)),
        sa.PrimaryKeyConstraint("id", name="pk_ledger"),
        sa.CheckConstraint("status >= 100 AND status <= 599", name="ck_ledger_status_range"),
        sa.CheckConstraint(
            "prompt_tokens >= 0 AND completion_tokens >= 0 AND reasoning_tokens >= 0 AND cached_tokens >= 0",
            name="ck_ledger_tokens_nonnegative",
        ),
    )
    op.create_index("ix_ledger_request_id", "ledger", ["request_id"])
    op.create_index("ix_ledger_received_at", "ledger", ["received_at"])
    op.create_index("ix_ledger_backend_received_at", "ledger", ["backend", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_backend_received_at", table_name="ledger")
    op.drop_index("ix_ledger_received_at", table_name="ledger")
    op.drop_index("ix_ledger_request_id", table_name="ledger")
    op.drop_table("ledger")
