"""The ledger rows of a batch of records: counted (when the upstream reported no usage), priced, and added
to the cost metrics once per batch. Runs on the ledger writer's thread, never on a request's path.

    maker = RowMaker(pricing, tokenizers, metrics, load)
    rows = maker.rows(batch, dims)       # `record.row_values` tuples, in the batch's order

The per-record path: keep it to arithmetic and tuples (every microsecond here is one the event loop loses
on a shared core, docs/metering.md).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from owstack.metering.costs import Pricing, Rate, Utilization
from owstack.metering.record import Pending, busy_seconds, row_values
from owstack.metering.tokens import Estimate, Tokenizers

if TYPE_CHECKING:
    from owstack.metering.prometheus import Metrics

log = logging.getLogger("owstack.metering.writer")


class RowMaker:
    def __init__(
        self,
        pricing: Pricing,
        tokenizers: Tokenizers | None,
        metrics: Metrics | None,
        load: MutableMapping[str, Utilization],
    ) -> None:
        """`load`: each self-hosted backend's last measured utilization (the writer refreshes it in place)."""
        self.pricing = pricing
        self.tokenizers = tokenizers
        self.metrics = metrics
        self.load = load
        self._estimate = Estimate()

    def rows(self, batch: list[Pending], dims: dict[tuple[Any, ...], int]) -> list[tuple[Any, ...]]:
        rate_of, load, metrics = self.pricing.rate, self.load, self.metrics
        spent: dict[Rate, list[float]] = {}  # the batch's cost and counterfactual per rate, for the metrics
        rows = []
        for item in batch:
            usage = item.usage
            if usage.reported or item.estimated or item.backend is None or not (item.status < 400 or item.output_text):
                tokens = (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens, usage.cached_tokens)
                estimated = item.estimated
            else:
                prompt, completion, estimated = self._count(item)
                tokens = (prompt, completion, 0, 0)
                if metrics is not None:
                    metrics.add_tokens(item.layer, item.backend, prompt, completion, 0, 0)
            rate = rate_of(item.backend, item.layer)
            costs = rate.costs(
                tokens[0], tokens[1], tokens[3], busy_seconds(item), load.get(item.backend or "") if load else None
            )
            cost, cf = costs[0], costs[4]
            if cost or cf:
                total = spent.get(rate)
                if total is None:
                    total = spent[rate] = [0.0, 0.0]
                total[0] += cost or 0.0
                total[1] += cf or 0.0
            rows.append(row_values(item, tokens, estimated, costs, dims))
        if metrics is not None:
            for rate, (cost, cf) in spent.items():
                metrics.add_cost(rate.layer, rate.name, rate.cost, cost)
                metrics.add_cost(rate.layer, rate.name, "counterfactual", cf)
        return rows

    def _count(self, item: Pending) -> tuple[int, int, bool]:
        """(prompt, completion, estimated) for a record whose upstream reported no usage."""
        counter = self.tokenizers.for_backend(item.backend) if self.tokenizers is not None else self._estimate
        usage = item.usage
        if usage.prompt_tokens or usage.completion_tokens:  # the gateway counted them for the client already
            return usage.prompt_tokens, usage.completion_tokens, not counter.exact
        text = "".join(item.output_text)
        try:
            return counter.prompt(item.messages or []), counter.text(text), not counter.exact
        except Exception as exc:  # a tokenizer failure must not lose the record
            log.warning("ledger: counting tokens of %s failed (%s); estimating", item.request_id, exc)
            return self._estimate.prompt(item.messages or []), self._estimate.text(text), True

    def refresh_load(self, engine: Any, window_s: float) -> None:
        """Measure each self-hosted backend's utilization over the last `window_s` from the ledger (in place:
        the limit stage prices with the same mapping); an outage keeps the last values."""
        from owstack.metering.utilization import measure
        from owstack.storage import is_outage

        names = [name for name, b in self.pricing.backends.items() if b.kind == "selfhost"]
        if not names:
            return
        try:
            self.load.update(measure(engine, names, window_s))
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("ledger: cannot measure utilization (%s); keeping the last values", type(exc).__name__)
