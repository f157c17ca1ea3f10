"""The ledger's dimension rows (tenant, key, protocol, layer, backend, model ...), held in memory.

`ledger_dims` has one row per distinct combination: hundreds, not millions. The console reads it whole
and again only when it grew (its count and largest id, one indexed query), so that grouping rollup rows by
tenant, layer, backend, model or adapter is a dictionary lookup per rollup row, done in Python.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from owstack.metering.ledger import ledger_dims

if TYPE_CHECKING:
    from owstack.config.load import Config

NONE = "(none)"


@dataclass(frozen=True, slots=True)
class Dim:
    id: int
    tenant: str
    key_id: str | None
    protocol: str
    layer: str | None
    backend: str | None
    engine: str | None
    model: str | None
    stream: bool
    finish_reason: str | None
    reasoning_policy: str | None
    cost_kind: str
    counterfactual_model: str | None
    #: the fine-tuned adapter, when the model reads `<the backend's model>:<adapter>`
    adapter: str | None

    def group(self, by: str) -> str:
        value = self.key_id if by == "key" else getattr(self, by)
        return NONE if value is None else str(value)


class DimsCache:
    def __init__(self, config: Config) -> None:
        self._models = {name: b.model for name, b in config.file.backends.items()}
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self.by_id: dict[int, Dim] = {}

    def adapter(self, backend: str | None, model: str | None) -> str | None:
        """The adapter a model name selects: what follows the backend's own model id and a colon."""
        base = self._models.get(backend or "")
        if model and base and model.startswith(base + ":") and len(model) > len(base) + 1:
            return model[len(base) + 1 :]
        return None

    def refresh(self, conn: sa.Connection) -> dict[int, Dim]:
        """The dims by id, read again only when the table changed."""
        d = ledger_dims.c
        stamp = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.max(d.id), 0))).one()
        with self._lock:
            if self._stamp == (stamp[0], stamp[1]):
                return self.by_id
        rows = conn.execute(sa.select(ledger_dims)).all()
        by_id = {
            r.id: Dim(
                r.id,
                r.tenant,
                r.key_id,
                r.protocol,
                r.layer,
                r.backend,
                r.engine,
                r.model,
                bool(r.stream),
                r.finish_reason,
                r.reasoning_policy,
                r.cost_kind,
                r.counterfactual_model,
                self.adapter(r.backend, r.model),
            )
            for r in rows
        }
        with self._lock:
            self.by_id, self._stamp = by_id, (stamp[0], stamp[1])
        return by_id

    def matching(self, conn: sa.Connection, test: Callable[[Dim], bool]) -> list[int]:
        return [i for i, dim in self.refresh(conn).items() if test(dim)]

    def values(self, conn: sa.Connection, by: str, only: Iterable[int] | None = None) -> list[str]:
        """The distinct values of a group (for filter menus), sorted."""
        dims = self.refresh(conn)
        chosen = dims.values() if only is None else (dims[i] for i in only if i in dims)
        return sorted({dim.group(by) for dim in chosen})
