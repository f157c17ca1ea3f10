"""The ledger's columns: the one definition every other description of a ledger row derives from.

`LEDGER` lists them in the order of the `ledger` view (0001's wide table, docs/metering.md), each with where
it is stored:

    "rows"   a column of `ledger_rows` (one per request) and of the view
    "dims"   a column of `ledger_dims` (what repeats across requests; a row holds the combination's id)
    "link"   `ledger_rows.dim`, that id: not in the view
    "view"   computed by the view from the others

Derived from it, and from nothing else:

    ROW_COLUMNS    ledger_rows' columns in order: the SQL table (`ledger.ledger_rows`), the INSERTs, the
                   journal's batches (`journal.encode`) and the tuples `record.row_values` makes
    DIM_COLUMNS    ledger_dims' columns after id and key: the table, and the key tuple at a row's `dim`
    VIEW_COLUMNS   the view's columns (`ledger.ledger`, what every reader queries)
    WAL_FIELDS     what the write-ahead log keeps of a record, after its format number (`record.wal_payload`):
                   the columns known when the request ends, before the writer counts and prices

A leaf module (no imports from owstack): the gateway, the ledger process and the readers all import it.
The migrations are history and keep their own copies; `tests/metering/test_columns.py` checks that a
database migrated to head has exactly these columns, in this order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "str", "int", "smallint", "bool", "float", "time", "json", "date"]
Place = Literal["rows", "dims", "link", "view"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    place: Place
    #: the SQL type: "id" (the 63-bit row id), "str" (VARCHAR(length)), "time" (a UTC timestamp) ...
    kind: Kind
    length: int = 0
    nullable: bool = True
    #: the `record.Pending` attribute the write-ahead log keeps it from ("" : not in the log)
    recorded: str = ""
    doc: str = ""


LEDGER: tuple[Column, ...] = (
    Column("id", "rows", "id", nullable=False, recorded="row_id",
           doc="unique, assigned once by the writer (a random per-process prefix and a counter), so that a "
               "retried batch cannot be recorded twice; SQLite's rowid"),
    Column("request_id", "rows", "str", 128, nullable=False, recorded="request_id"),
    Column("received_at", "rows", "time", nullable=False, recorded="received_at"),
    Column("dim", "link", "int", nullable=False, doc="the ledger_dims id of the columns that repeat"),
    Column("day", "view", "date", doc="the UTC date of received_at (--by day)"),
    Column("tenant", "dims", "str", 64, nullable=False, recorded="tenant"),
    Column("key_id", "dims", "str", 64, recorded="key_id"),
    Column("protocol", "dims", "str", 16, nullable=False, recorded="protocol"),
    Column("layer", "dims", "str", 16, recorded="layer"),
    Column("backend", "dims", "str", 64, recorded="backend"),
    Column("engine", "dims", "str", 32, recorded="engine"),
    Column("model", "dims", "str", 256, recorded="model"),
    Column("stream", "dims", "bool", nullable=False, recorded="stream"),
    Column("status", "rows", "smallint", nullable=False, recorded="status"),
    Column("error_code", "rows", "str", 64, recorded="error_code"),
    Column("finish_reason", "dims", "str", 32, recorded="finish_reason"),
    Column("client_disconnected", "rows", "bool", nullable=False, recorded="client_disconnected"),
    Column("reasoning_policy", "dims", "str", 32, recorded="reasoning_policy"),
    Column("prompt_tokens", "rows", "int", nullable=False, recorded="usage.prompt_tokens"),
    Column("completion_tokens", "rows", "int", nullable=False, recorded="usage.completion_tokens"),
    Column("reasoning_tokens", "rows", "int", nullable=False, recorded="usage.reasoning_tokens"),
    Column("cached_tokens", "rows", "int", nullable=False, recorded="usage.cached_tokens"),
    Column("tokens_reported", "rows", "bool", nullable=False, recorded="usage.reported",
           doc="the token counts came from the upstream's usage"),
    Column("tokens_estimated", "rows", "bool", nullable=False, recorded="estimated",
           doc="counted by an estimate (characters / 4), not by the model's tokenizer"),
    Column("latency_s", "rows", "float", recorded="latency_s"),
    Column("ttft_s", "rows", "float", recorded="ttft_s"),
    Column("attempts", "rows", "smallint", nullable=False, recorded="attempts",
           doc="how many backends were tried (the log keeps the attempts themselves)"),
    Column("fallbacks", "view", "smallint", doc="attempts - 1"),
    Column("attempt_log", "rows", "json", doc='[{"backend", "outcome", "latency_s"}, ...] in the order tried'),
    Column("cost_usd", "rows", "float",
           doc="what the request cost: self-hosted hardware share, embedded CPU power, or the proprietary API price"),
    Column("cost_kind", "dims", "str", 16, nullable=False),
    Column("capital_usd", "rows", "float", doc="the part of cost_usd that amortizes owned hardware"),
    Column("utilization", "rows", "float", doc="the backend utilization the self-hosted cost was divided by"),
    Column("counterfactual_usd", "rows", "float",
           doc="what the layer's proprietary counterfactual model would have charged"),
    Column("counterfactual_model", "dims", "str", 128),
)  # fmt: skip

ROWS: tuple[Column, ...] = tuple(c for c in LEDGER if c.place in ("rows", "link"))
DIMS: tuple[Column, ...] = tuple(c for c in LEDGER if c.place == "dims")
ROW_COLUMNS: tuple[str, ...] = tuple(c.name for c in ROWS)
DIM_COLUMNS: tuple[str, ...] = tuple(c.name for c in DIMS)
VIEW_COLUMNS: tuple[str, ...] = tuple(c.name for c in LEDGER if c.place != "link")
WAL_FIELDS: tuple[str, ...] = tuple(c.name for c in LEDGER if c.recorded)
#: each column by name
BY_NAME: dict[str, Column] = {c.name: c for c in LEDGER}

#: positions in a ledger row that the writer's fast paths read without looking names up
ID, RECEIVED_AT, DIM = (ROW_COLUMNS.index(n) for n in ("id", "received_at", "dim"))
assert (ID, RECEIVED_AT, DIM) == (0, 2, 3), "ledger.insert_values converts these positions"
