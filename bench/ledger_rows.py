"""What one ledger row costs SQLite, by the row's shape (the evidence for the compact row, docs/metering.md).

    .venv/bin/python bench/ledger_rows.py [--n 100000]

Prints CPU microseconds per row for batched INSERTs (256 rows per transaction, WAL, synchronous=NORMAL,
as the ledger writer does) of: the ledger row as the writer makes it (through `ledger.write_values` into
a migrated database, its combination of repeated values already interned); raw `sqlite3` rows of 34 text
values; of 34 integers; and a compact row (three strings, 24 numbers) without and with three secondary
indexes. CPU time (`time.process_time`), so the figures hold on a busy machine better than wall time;
run it on a quiet one all the same.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from owstack.metering.ledger import Dims, write_values
from owstack.metering.record import new_id
from owstack.storage import engine, migrate

BATCH = 256


def ledger_row(i: int) -> tuple[Any, ...]:
    """A served chat request with upstream usage, as `record.row_values` makes it (dims cached)."""
    return (
        new_id(), f"req_{i:016x}", 1796403600.123456, 1, 200, None, False, 9, 8, 0, 0, True, False, 0.001, 0.0005,
        1, '[{"backend":"upstream","outcome":"ok","latency_s":0.001}]', None, None, None, 2e-6,
    )  # fmt: skip


def compact(i: int, j: int) -> Any:
    """Column j of compact row i: an id, a request id and one more string, then integers and floats."""
    return f"{i:016x}-{j}" if j < 3 else (i * 1.5 if j % 2 else j)


def per_row_us(insert: Callable[[list[tuple[Any, ...]]], None], rows: list[tuple[Any, ...]]) -> float:
    start = time.process_time()
    for s in range(0, len(rows), BATCH):
        insert(rows[s : s + BATCH])
    return (time.process_time() - start) / len(rows) * 1e6


def raw_table(path: Path, columns: int, indexes: int) -> Callable[[list[tuple[Any, ...]]], None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    names = ", ".join(f"c{i}" for i in range(columns))
    conn.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {names})")
    for i in range(indexes):
        conn.execute(f"CREATE INDEX i{i} ON t (c{i})")
    sql = f"INSERT INTO t ({names}) VALUES ({', '.join('?' * columns)})"

    def insert(rows: list[tuple[Any, ...]]) -> None:
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")

    return insert


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="rows per measurement (default 100000)")
    n = p.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        url = f"sqlite:///{d / 'ledger.db'}"
        migrate(url)
        eng = engine(url)
        print(f"rows per measurement: {n}, {BATCH} per transaction; CPU µs per row")
        dims = Dims()
        key = (
            "default",
            None,
            "openai",
            "edge",
            "upstream",
            "vllm",
            "bench-model",
            False,
            "stop",
            None,
            "unknown",
            None,
        )
        conn = eng.connect()  # as the writer: one connection for every batch
        write_values(conn, [(new_id(), "warm", 1796403600.0, key, *ledger_row(0)[4:])], dims)
        assert dims.ids == {key: 1}
        today = per_row_us(lambda r: write_values(conn, r, dims), [ledger_row(i) for i in range(n)])
        conn.close()
        print(f"  {'ledger row (21 columns, 4 strings, 2 indexes):':53}{today:5.2f}")
        eng.dispose()
        cases: list[tuple[str, int, int, Callable[[int, int], Any]]] = [
            ("raw, 34 text values", 34, 0, lambda i, j: f"value-{j}"),
            ("raw, 34 integers", 34, 0, lambda i, j: i + j),
            ("raw, compact: 3 strings + 24 numbers", 27, 0, compact),
            ("raw, compact + 3 secondary indexes", 27, 3, compact),
        ]
        for k, (label, columns, indexes, value) in enumerate(cases):
            rows = [tuple(value(i, j) for j in range(columns)) for i in range(n)]
            print(f"  {label + ':':53}{per_row_us(raw_table(d / f'raw{k}.db', columns, indexes), rows):5.2f}")


if __name__ == "__main__":
    main()
