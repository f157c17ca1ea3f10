"""The ledger's one definition (`metering/columns.py`) against everything that lays a ledger row out: the
database the migrations make, the SQLAlchemy tables, the writer's row tuples, the journal's batches and the
write-ahead log's records. A column added in one place and not the others fails here."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import orjson
import sqlalchemy as sa

from owstack import storage
from owstack.metering import columns, journal, ledger, rollups
from owstack.metering.record import WAL_FORMAT, Pending, from_wal, row_values, wal_payload
from owstack.pipeline.context import Attempt
from owstack.types import Usage

#: how the databases report each kind (a reflected type's class name, upper-cased, and its length)
_REFLECTED = {
    "id": {"INTEGER", "BIGINT"},
    "str": {"VARCHAR"},
    "int": {"INTEGER"},
    "smallint": {"SMALLINT"},
    "bool": {"BOOLEAN"},
    "float": {"DOUBLE", "DOUBLE_PRECISION", "FLOAT"},
    "time": {"DATETIME", "TIMESTAMP"},
    "json": {"JSON"},
    "date": {"DATE"},
}


def _reflected(inspector: Any, table: str) -> list[dict[str, Any]]:
    return list(inspector.get_columns(table))


def _check(reflected: dict[str, Any], c: columns.Column) -> None:
    kind = type(reflected["type"]).__name__.upper()
    assert kind in _REFLECTED[c.kind], (c.name, kind)
    if c.kind == "str":
        assert reflected["type"].length == c.length, c.name
    assert bool(reflected["nullable"]) == c.nullable, c.name


def test_the_migrated_tables_have_the_definitions_columns_in_its_order(db_url: str) -> None:
    storage.migrate(db_url)
    inspector = sa.inspect(storage.engine(db_url))
    rows = _reflected(inspector, "ledger_rows")
    assert [r["name"] for r in rows] == list(columns.ROW_COLUMNS)
    for r, c in zip(rows, columns.ROWS, strict=True):
        _check(r, c)
    dims = _reflected(inspector, "ledger_dims")
    assert [r["name"] for r in dims] == ["id", "key", *columns.DIM_COLUMNS]
    for r, c in zip(dims[2:], columns.DIMS, strict=True):
        _check(r, c)
    view = _reflected(inspector, "ledger")
    assert [r["name"] for r in view] == list(columns.VIEW_COLUMNS)


def test_the_tables_and_the_view_are_made_from_the_definition() -> None:
    assert tuple(c.name for c in ledger.ledger_rows.columns) == columns.ROW_COLUMNS
    assert tuple(c.name for c in ledger.ledger_dims.columns)[2:] == columns.DIM_COLUMNS
    assert ledger.COLUMNS == tuple(c.name for c in ledger.ledger.columns) == columns.VIEW_COLUMNS
    assert ledger.ROW_COLUMNS == columns.ROW_COLUMNS and ledger.DIM_COLUMNS == columns.DIM_COLUMNS
    # the rollups read ledger columns by these names, and cut the grouping values to the dims' lengths
    assert set(rollups.FIELDS[2:]) <= set(columns.ROW_COLUMNS)
    assert all(columns.BY_NAME[name].length == length for name, length in rollups.GROUPING)
    # every stored column is in exactly one table; the view has all but the link
    stored = [c.name for c in columns.LEDGER if c.place in ("rows", "dims")]
    assert sorted(stored) == sorted(n for n in columns.VIEW_COLUMNS if columns.BY_NAME[n].place != "view")


def _pending() -> Pending:
    """A record whose every field holds a value no other field holds."""
    return Pending(
        "req-1", 1_700_000_000.25, "tenant-a", "key-b", "anthropic", "cloud", "backend-c", "vllm", "model-d",
        True, 429, "rate_limited", "length", True, "low", Usage(11, 22, 33, 44, True), 1.5, 0.25,
        [Attempt("backend-x", "timeout", 0.5), Attempt("backend-c", "ok", 1.0)], [], None,
        row_id=12345, estimated=False,
    )  # fmt: skip


def test_row_values_lays_each_value_at_its_columns_place() -> None:
    p = _pending()
    costs = (0.01, "selfhost", 0.002, 0.5, 0.03, "gpt-4o")
    row = dict(zip(columns.ROW_COLUMNS, row_values(p, (11, 22, 33, 44), True, costs), strict=True))
    dim = dict(zip(columns.DIM_COLUMNS, row["dim"], strict=True))
    expected_dim = {c.name: attrgetter(c.recorded)(p) for c in columns.DIMS if c.recorded}
    assert dim == {**expected_dim, "cost_kind": "selfhost", "counterfactual_model": "gpt-4o"}
    assert row | {"dim": None, "attempt_log": None} == {
        "id": 12345, "request_id": "req-1", "received_at": 1_700_000_000.25, "dim": None, "status": 429,
        "error_code": "rate_limited", "client_disconnected": True, "prompt_tokens": 11, "completion_tokens": 22,
        "reasoning_tokens": 33, "cached_tokens": 44, "tokens_reported": True, "tokens_estimated": True,
        "latency_s": 1.5, "ttft_s": 0.25, "attempts": 2, "attempt_log": None, "cost_usd": 0.01,
        "capital_usd": 0.002, "utilization": 0.5, "counterfactual_usd": 0.03,
    }  # fmt: skip
    assert orjson.loads(row["attempt_log"]) == [
        {"backend": "backend-x", "outcome": "timeout", "latency_s": 0.5},
        {"backend": "backend-c", "outcome": "ok", "latency_s": 1.0},
    ]


def test_the_write_ahead_log_keeps_each_recorded_field_at_its_place() -> None:
    p = _pending()
    payload = orjson.loads(wal_payload(p))
    assert payload[0] == WAL_FORMAT
    record = dict(zip(columns.WAL_FIELDS, payload[1:], strict=True))
    for c in columns.LEDGER:
        if c.recorded and c.name != "attempts":
            assert record[c.name] == attrgetter(c.recorded)(p), c.name
    assert record["attempts"] == [["backend-x", "timeout", 0.5], ["backend-c", "ok", 1.0]]
    assert from_wal(wal_payload(p)) == p


def test_the_write_ahead_log_format_is_unchanged() -> None:
    """The on-disk layout of format 1, spelled out: a record logged by an older gateway replays."""
    assert columns.WAL_FIELDS == (
        "id", "request_id", "received_at", "tenant", "key_id", "protocol", "layer", "backend", "engine", "model",
        "stream", "status", "error_code", "finish_reason", "client_disconnected", "reasoning_policy",
        "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "tokens_reported",
        "tokens_estimated", "latency_s", "ttft_s", "attempts",
    )  # fmt: skip
    logged = (
        b'[1,7,"r",1.5,"t",null,"openai","edge","b","llamacpp","m",false,200,null,"stop",false,null,'
        b'3,4,0,0,true,false,0.2,0.1,[["b","ok",0.2]]]'
    )
    p = from_wal(logged)
    got = (p.row_id, p.request_id, p.tenant, p.layer, p.status, p.usage.completion_tokens)
    assert got == (7, "r", "t", "edge", 200, 4)
    assert p.attempts == [Attempt("b", "ok", 0.2)] and wal_payload(p) == logged


def test_the_journal_names_its_columns_from_the_definition() -> None:
    p = _pending()
    row = row_values(p, (1, 2, 3, 4), False, (None, "none", None, None, None, None))
    doc = orjson.loads(journal.encode([row]))
    assert doc["columns"] == list(columns.ROW_COLUMNS)
    assert journal.decode(journal.encode([row])) == [row]
