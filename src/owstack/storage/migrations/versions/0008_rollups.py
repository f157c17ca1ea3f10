"""The console's tables: `ledger_rollups` (per-minute, per-hour and per-day sums of the ledger, kept by the
filing transaction: owstack.metering.rollups) and `console_verifications` (the audit chain checks the
console ran, with their outcome). An existing ledger is summed into the rollups here, once.

Revision ID: 0008_rollups
Revises: 0007_mcp_pins
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_rollups"
down_revision = "0007_mcp_pins"
branch_labels = None
depends_on = None

#: as owstack.metering.rollups declares them (42 histogram buckets each)
_BUCKETS = 42
_INTS = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "estimated",
         "disconnected", "fallbacks", "uncosted")  # fmt: skip
_FLOATS_1 = ("cost_usd", "capital_usd", "counterfactual_usd")


def _sums() -> list[sa.Column[object]]:
    def big(name: str) -> sa.Column[object]:
        return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")

    def real(name: str) -> sa.Column[object]:
        return sa.Column(name, sa.Double, nullable=False, server_default="0")

    return [
        *(big(n) for n in _INTS),
        *(real(n) for n in _FLOATS_1),
        big("latency_n"),
        real("latency_sum_s"),
        big("ttft_n"),
        real("ttft_sum_s"),
        *(big(f"hist_{i}") for i in range(_BUCKETS)),
        *(big(f"ttft_{i}") for i in range(_BUCKETS)),
    ]


def upgrade() -> None:
    op.create_table(
        "ledger_rollups",
        sa.Column("grain", sa.Integer, nullable=False),
        sa.Column("bucket", sa.BigInteger, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("error_code", sa.String(64), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint(
            "grain", "bucket", "tenant", "layer", "backend", "model", "status", "error_code", name="pk_ledger_rollups"
        ),
    )
    op.create_table(
        "console_verifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("ok", sa.Boolean),
        sa.Column("records", sa.BigInteger),
        sa.Column("streams", sa.Integer),
        sa.Column("summary", sa.Text),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    from owstack.metering.rollup_build import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    # journaled batches are filed first, while their rollups can still be summed (0005's downgrade files the
    # rest, and would find no rollup table)
    from owstack.metering.journal import expand
    from owstack.metering.ledger import Dims

    expand(op.get_bind(), Dims(), own_transactions=False)
    op.drop_table("console_verifications")
    op.drop_table("ledger_rollups")
