"""The `metering:` config section: the ledger writer, the cost model's knobs and the payback target.

Every field has a default; `metering: {}` (or no section) meters every request into `storage.url`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from owstack.config.base import FilePath, Section

#: the proprietary model each layer is priced against when the config's `counterfactual:` omits it
DEFAULT_COUNTERFACTUAL: dict[str, str] = {
    "coding": "gpt-5.4",
    "multimodal": "gpt-5.4",
    "edge": "gpt-5.4-mini",
}


class MeteringSection(Section):
    #: record every request in the ledger (off: only the Prometheus metrics that need no ledger)
    enabled: bool = True
    #: where the ledger's SQL runs: "process", a child process of the gateway (python -m owstack.metering.sink,
    #: about 55 MB) that journals each batch with one INSERT and moves it into the ledger's indexed table
    #: when the traffic allows (docs/metering.md, "The journal"), or "thread", the writer thread itself,
    #: straight into the table (one process fewer; the full SQL on the gateway's process at once).
    #: An in-memory SQLite database is always written by the thread.
    writer: Literal["process", "thread"] = "process"
    #: the ledger process moves journaled batches into the ledger while at least this share of the CPUs it
    #: may run on is idle (measured over 250 ms: the gateway is not saturating them; 0: always, so batches
    #: move within a quarter second; above 1: never, but for the limit below, flushes and readers)...
    journal_spare_cpu: Annotated[float, Field(ge=0, le=2)] = 0.25
    #: ... and, while the journal holds more rows than this, one batch out for every batch in (so a
    #: sustained saturation pays the full cost, a burst shorter than this many records does not). Readers
    #: (`owstack usage`, `savings`, budget seeding) move what is journaled first. 0: move each batch at once.
    journal_max_rows: Annotated[int, Field(ge=0, le=100_000_000)] = 200_000
    #: make each request's record durable before its response completes: appended to a local write-ahead
    #: log with group commit (one fsync for the records of concurrent requests, overlapping the audit log's),
    #: released once the database has it, replayed at start after a crash (docs/metering.md, "Durability").
    #: Off: records wait in memory for up to `flush_interval_ms`, and a crash loses those.
    durable: bool = True
    #: the write-ahead log's directory (one slot per process inside; relative to the config file's folder)
    wal_directory: FilePath = "owstack-ledger-wal"
    #: fdatasync each commit (survives a crash of the host); false: write only (survives a crash of the
    #: process, not of the host) for disks whose fsync costs more than the gateway can afford
    wal_sync: bool = True
    #: write a batch as soon as this many records are waiting
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 1024
    #: ... or when the oldest waiting record is this old
    flush_interval_ms: Annotated[int, Field(ge=10, le=60_000)] = 500
    #: records held in memory while the database is unreachable (about 300 bytes each: 100,000 is
    #: some 30 MB); beyond it new records are dropped (counted in owstack_ledger_dropped_records_total)
    max_buffer: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    #: longest wait between two retries while the database is unreachable
    retry_max_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    #: how long a graceful shutdown keeps retrying to flush before giving the remaining records up
    shutdown_timeout_s: Annotated[float, Field(ge=0, le=600)] = 10.0
    #: the window over which each self-hosted backend's utilization is measured from the ledger
    utilization_window_s: Annotated[float, Field(ge=60)] = 3600.0
    #: how often the writer re-measures utilization
    utilization_refresh_s: Annotated[float, Field(ge=1)] = 60.0
    #: price the counterfactual at the provider's Batch API rates (offline workloads)
    counterfactual_batch: bool = False
    #: marginal electrical power of the embedded CPU engine while it generates, in watts
    embedded_watts: Annotated[float, Field(ge=0)] = 35.0
    #: electricity price for the embedded engine, $ per kWh
    embedded_usd_per_kwh: Annotated[float, Field(ge=0)] = 0.15
    #: a directory shared by the gateway's worker processes, so that GET /metrics on any worker reports
    #: all of them (None: each process reports its own numbers)
    metrics_dir: str | None = None
    #: capital spent on the self-hosted stack, for `owstack savings` payback; None: the sum of the
    #: purchase prices of the backends' hardware profiles (when their profiles are priced by capex)
    capex_usd: Annotated[float, Field(ge=0)] | None = None
