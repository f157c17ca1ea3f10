"""The compact ledger: `ledger_rows` (per request) and `ledger_dims` (what repeats), read through a view.

The wide table of 0001 bound fourteen strings per request; the writer's INSERTs were most of what metering
cost the gateway (docs/metering.md, "The throughput target"). The view `ledger` keeps 0001's columns, so
every reader's SQL is unchanged. Existing rows are moved over (ids renumbered: the writer's ids are now
63-bit integers); the downgrade moves them back (ids as 32 hexadecimal digits).

Revision ID: 0003_ledger_compact
Revises: 0002_keys
"""

from __future__ import annotations

import importlib

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0003_ledger_compact"
down_revision = "0002_keys"
branch_labels = None
depends_on = None

#: ledger_dims' columns after id and key, in the order the key's JSON array lists them
DIMS = (
    "tenant", "key_id", "protocol", "layer", "backend", "engine", "model", "stream", "finish_reason",
    "reasoning_policy", "cost_kind", "counterfactual_model",
)  # fmt: skip
#: ledger_rows' columns after id and dim, each also a column of 0001's table and of the view
ROWS = (
    "request_id", "received_at", "status", "error_code", "client_disconnected", "prompt_tokens",
    "completion_tokens", "reasoning_tokens", "cached_tokens", "tokens_reported", "tokens_estimated",
    "latency_s", "ttft_s", "attempts", "attempt_log", "cost_usd", "capital_usd", "utilization",
    "counterfactual_usd",
)  # fmt: skip
#: 0001's columns, in its order: the view's
WIDE = (
    "id", "request_id", "received_at", "day", "tenant", "key_id", "protocol", "layer", "backend", "engine",
    "model", "stream", "status", "error_code", "finish_reason", "client_disconnected", "reasoning_policy",
    "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "tokens_reported",
    "tokens_estimated", "latency_s", "ttft_s", "attempts", "fallbacks", "attempt_log", "cost_usd", "cost_kind",
    "capital_usd", "utilization", "counterfactual_usd", "counterfactual_model",
)  # fmt: skip


def _joined(sqlite: bool, id_expr: str) -> str:
    """SELECT of 0001's columns from the two tables (the view's body, and the downgrade's copy)."""
    exprs = {name: f"r.{name}" for name in ROWS}
    exprs.update({name: f"d.{name}" for name in DIMS})
    exprs["id"] = id_expr
    exprs["day"] = "substr(r.received_at, 1, 10)" if sqlite else "(r.received_at AT TIME ZONE 'UTC')::date"
    exprs["fallbacks"] = "CASE WHEN r.attempts > 0 THEN r.attempts - 1 ELSE 0 END"
    columns = ",\n    ".join(f"{exprs[name]} AS {name}" for name in WIDE)
    return f"SELECT\n    {columns}\nFROM ledger_rows AS r JOIN ledger_dims AS d ON d.id = r.dim"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "ledger_dims",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("layer", sa.String(16)),
        sa.Column("backend", sa.String(64)),
        sa.Column("engine", sa.String(32)),
        sa.Column("model", sa.String(256)),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("finish_reason", sa.String(32)),
        sa.Column("reasoning_policy", sa.String(32)),
        sa.Column("cost_kind", sa.String(16), nullable=False),
        sa.Column("counterfactual_model", sa.String(128)),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_dims"),
        sa.UniqueConstraint("key", name="uq_ledger_dims_key"),
    )
    op.create_table(
        "ledger_rows",
        # INTEGER on SQLite: the rowid itself, no separate index
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False, autoincrement=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("client_disconnected", sa.Boolean, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("tokens_reported", sa.Boolean, nullable=False),
        sa.Column("tokens_estimated", sa.Boolean, nullable=False),
        sa.Column("latency_s", sa.Double),
        sa.Column("ttft_s", sa.Double),
        sa.Column("attempts", sa.SmallInteger, nullable=False),
        sa.Column("attempt_log", sa.JSON),
        sa.Column("cost_usd", sa.Double),
        sa.Column("capital_usd", sa.Double),
        sa.Column("utilization", sa.Double),
        sa.Column("counterfactual_usd", sa.Double),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_rows"),
        sa.CheckConstraint("status >= 100 AND status <= 599", name="ck_ledger_rows_status_range"),
        sa.CheckConstraint(
            "prompt_tokens >= 0 AND completion_tokens >= 0 AND reasoning_tokens >= 0 AND cached_tokens >= 0",
            name="ck_ledger_rows_tokens_nonnegative",
        ),
    )
    op.create_index("ix_ledger_rows_request_id", "ledger_rows", ["request_id"])
    op.create_index("ix_ledger_rows_received_at", "ledger_rows", ["received_at"])
    op.create_index("ix_ledger_rows_dim_received_at", "ledger_rows", ["dim", "received_at"])
    _move_rows(sqlite)
    op.drop_index("ix_ledger_backend_received_at", table_name="ledger")
    op.drop_index("ix_ledger_received_at", table_name="ledger")
    op.drop_index("ix_ledger_request_id", table_name="ledger")
    op.drop_table("ledger")
    op.execute(f"CREATE VIEW ledger AS {_joined(sqlite, 'r.id')}")


def _move_rows(sqlite: bool) -> None:
    """0001's rows into the two tables: each distinct combination once, then the rows pointing at it."""
    bind = op.get_bind()
    wide = sa.table("ledger", *(sa.column(n, sa.Boolean if n == "stream" else sa.String) for n in DIMS))
    combos = bind.execute(sa.select(*wide.c).distinct()).all()
    if not combos:
        return
    dims = sa.table("ledger_dims", sa.column("id"), sa.column("key"), *(sa.column(n) for n in DIMS))
    op.bulk_insert(
        dims,
        [
            {"id": i, "key": orjson.dumps(list(combo)).decode(), **dict(zip(DIMS, combo, strict=True))}
            for i, combo in enumerate(combos, start=1)
        ],
    )
    same = " AND ".join(f"d.{n} IS {'' if sqlite else 'NOT DISTINCT FROM '}l.{n}" for n in DIMS)
    rows = ", ".join(ROWS)
    op.execute(
        f"INSERT INTO ledger_rows (id, dim, {rows}) "
        f"SELECT ROW_NUMBER() OVER (ORDER BY l.received_at, l.id), d.id, {', '.join('l.' + n for n in ROWS)} "
        f"FROM ledger AS l JOIN ledger_dims AS d ON {same}"
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute("DROP VIEW ledger")
    importlib.import_module("owstack.storage.migrations.versions.0001_ledger").upgrade()  # the wide table
    hex_id = "printf('%032x', r.id)" if sqlite else "lpad(to_hex(r.id), 32, '0')"
    op.execute(f"INSERT INTO ledger ({', '.join(WIDE)}) {_joined(sqlite, hex_id)}")
    op.drop_index("ix_ledger_rows_dim_received_at", table_name="ledger_rows")
    op.drop_index("ix_ledger_rows_received_at", table_name="ledger_rows")
    op.drop_index("ix_ledger_rows_request_id", table_name="ledger_rows")
    op.drop_table("ledger_rows")
    op.drop_table("ledger_dims")
