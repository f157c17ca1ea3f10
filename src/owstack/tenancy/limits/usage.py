"""What a request reserves, what it used, and what it cost: the numbers the limit stage settles.

Tokens, before the call (cheap, no tokenizer): the prompt is estimated as the request body's bytes / 4
(JSON punctuation included, so it errs high), except that an image counts `IMAGE_TOKENS` instead of its
base64 bytes; the completion as the request's `max_tokens` (or `max_completion_tokens`), else
`limits.completion_estimate_tokens`.

Tokens, after the call: the usage the upstream reported, or the one the gateway counted for the client;
when neither exists (a stream whose client did not ask for usage), the prompt estimate plus the output's
characters / 4. A request that produced nothing (refused later, failed upstream) used no tokens: its
reservation is refunded, as the ledger bills it no tokens either.

Cost: the same `Pricing` the ledger writer uses (`owstack.metering.costs`), with the backend's last
measured utilization, so a request is charged what its ledger row will say, up to two differences: the
writer may count tokens exactly where this estimates them (streams without usage), and it may price with
a utilization measured a minute later. Proprietary backends cost their API price; the embedded engine
its electricity; self-hosted backends with `hardware:` their share of the deployment; self-hosted
backends without `hardware:` nothing (they cannot exhaust a budget; the stage warns at start).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from owstack.pipeline.context import RequestContext

if TYPE_CHECKING:
    from owstack.metering.costs import Pricing, Utilization

log = logging.getLogger(__name__)

#: prompt tokens counted for one image (vision encoders take some hundreds to a few thousand)
IMAGE_TOKENS = 1024


def prompt_estimate(ctx: RequestContext) -> int:
    request = ctx.request
    if request is None or not request.has_images:
        return len(ctx.body) // 4
    chars = images = 0
    for message in request.messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "text":
                    chars += len(str(part.get("text") or ""))
                else:
                    images += 1
    return chars // 4 + images * IMAGE_TOKENS


def used_tokens(ctx: RequestContext, prompt_estimated: int) -> tuple[int, int]:
    """(prompt, completion) tokens the request used, for settlement and pricing."""
    usage = ctx.usage
    if usage.prompt_tokens or usage.completion_tokens:
        return usage.prompt_tokens, usage.completion_tokens
    if ctx.output_text:
        return prompt_estimated, sum(map(len, ctx.output_text)) // 4
    return 0, 0


def request_cost(
    pricing: Pricing | None, load: Mapping[str, Utilization], ctx: RequestContext, prompt: int, completion: int
) -> float:
    """USD the request cost (its ledger `cost_usd`, approximately); 0 when it reached no priced backend."""
    backend = ctx.backend
    if pricing is None or backend is None:
        return 0.0
    latency = ctx.latency_s
    busy = None if latency is None else max(latency - sum(a.latency_s for a in ctx.attempts[:-1]), 0.0)
    cached = min(ctx.usage.cached_tokens, prompt)
    # layer=None: the counterfactual, which a budget does not need, is not computed
    costs = pricing.price(backend, None, (prompt, completion, cached), busy, load.get(backend))
    return costs.cost_usd or 0.0


def max_cost(
    pricing: Pricing | None,
    load: Mapping[str, Utilization],
    candidates: Sequence[str],
    prompt: int,
    completion: int,
    reserve_s: float,
) -> float:
    """The most the request can cost on any backend it may reach (its replicas and fallbacks): `prompt` plus
    `completion` tokens at an API price (no cached discount), `reserve_s` seconds on a time-priced backend
    with its last measured load. What a budget hold reserves; 0 when no candidate is priced."""
    if pricing is None:
        return 0.0
    most = 0.0
    for name in candidates:
        cost = pricing.rate(name, None).costs(prompt, completion, 0, reserve_s, load.get(name))[0]
        if cost is not None and cost > most:
            most = cost
    return most


def ledger_spend(url: str, tenants: list[str], since: float) -> dict[str, float]:
    """Each tenant's summed `cost_usd` in the ledger since `since` (epoch s). Blocking: run it in a thread.
    A database or ledger that does not exist yet gives {} (nothing is created by reading)."""
    import sqlalchemy as sa

    from owstack.metering.journal import catch_up
    from owstack.metering.ledger import ledger
    from owstack.storage.db import engine, resolve_url

    resolved = resolve_url(url)
    if resolved.get_backend_name() == "sqlite":
        file = resolved.database
        if file in (None, "", ":memory:") or not Path(str(file)).exists():
            return {}
    eng = engine(url)
    if not sa.inspect(eng).has_table("ledger"):
        return {}
    catch_up(url)  # what the ledger process has journaled and not moved yet counts too
    c = ledger.c
    query = (
        sa.select(c.tenant, sa.func.sum(c.cost_usd))
        .where(c.received_at >= datetime.fromtimestamp(since, UTC), c.tenant.in_(tenants))
        .group_by(c.tenant)
    )
    with eng.connect() as conn:
        return {str(tenant): float(total) for tenant, total in conn.execute(query) if total}
