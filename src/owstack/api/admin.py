"""GET /healthz, /readyz, /metrics."""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING

import orjson

from owstack.api.http import Receive, Scope, Send, send_json
from owstack.pipeline.context import RequestContext

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway


#: per gateway: since when (monotonic) each part has been unable to serve, as /healthz last saw it
_down_since: weakref.WeakKeyDictionary[Gateway, dict[str, float]] = weakref.WeakKeyDictionary()


async def healthz(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    """Liveness: 200 while the process can serve, or can be expected to again by itself; 503 once a part
    (the audit log, the ledger's write-ahead log) has been unable to serve for `server.limits.unhealthy_after_s`
    in a row, as seen by the probes (a restart is then the remedy: issue 14's gateway stayed "ok" while it
    refused every request). /readyz turns 503 at once, for load balancers."""
    after_s = gw.config.file.server.limits.unhealthy_after_s
    problems = gw.unavailable()
    now = time.monotonic()
    since = _down_since.setdefault(gw, {})
    for name in [n for n in since if n not in problems]:
        del since[name]
    stuck = {}
    for name, why in problems.items():
        down_for = now - since.setdefault(name, now)
        if down_for >= after_s:
            stuck[name] = {"reason": why, "for_s": round(down_for, 1)}
    if stuck:
        await send_json(send, 503, orjson.dumps({"status": "unhealthy", "parts": stuck}), [])
        return
    await send_json(send, 200, b'{"status":"ok"}', [])


async def readyz(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    """Ready when started and every layer has at least one backend that is healthy with a closed breaker."""
    layers = {}
    for layer, spec in gw.config.file.layers.items():
        names = [*spec.backends, *spec.fallback]
        up = [n for n in names if gw.health.healthy(n) and gw.slots[n].breaker.available()]
        layers[layer] = {"ready": bool(up), "available": up}
    body: dict[str, object] = {"started": gw.ready, "layers": layers}
    ready = gw.ready and all(v["ready"] for v in layers.values())
    for name, problem in gw.unavailable().items():
        body[name] = problem
        ready = False
    body["status"] = "ready" if ready else "not ready"
    await send_json(send, 200 if ready else 503, orjson.dumps(body), [])


async def metrics(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    if gw.metrics is None:
        await send_json(
            send,
            404,
            b'{"error":{"message":"metering is off","type":"not_found_error","param":null,"code":"metrics_disabled"}}',
            [],
        )
        return
    body, content_type = gw.metrics.render()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
