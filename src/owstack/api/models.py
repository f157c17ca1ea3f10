"""`GET /v1/models` and `GET /v1/models/{id}`: the layers, `auto`, and every backend's model, in OpenAI's
shape, or in Anthropic's when the client sends `anthropic-version` (Claude Code lists models at start)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from owstack.api.http import Receive, Scope, Send, send_json
from owstack.errors import ModelNotFound
from owstack.layers import AUTO, LAYERS
from owstack.pipeline.context import RequestContext
from owstack.types import JSON

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway

_CREATED = int(time.time())


def catalog(gw: Gateway) -> list[JSON]:
    """Every model id the gateway answers to, OpenAI-shaped, with owstack's notes."""
    data: list[JSON] = [
        {"id": name, "object": "model", "created": _CREATED, "owned_by": "owstack", "owstack": {"kind": "layer"}}
        for name in (*LAYERS, AUTO)
    ]
    seen = set(LAYERS) | {AUTO}
    backends = gw.config.file.backends
    for section in backends.values():
        if section.model in seen:
            continue
        seen.add(section.model)
        serving = [n for n, s in backends.items() if s.model == section.model]
        data.append(
            {
                "id": section.model,
                "object": "model",
                "created": _CREATED,
                "owned_by": section.engine,
                "owstack": {
                    "kind": "backend-model",
                    "backends": serving,
                    "layer": gw.router.direct[section.model].layer,
                },
            }
        )
    for model_id, info in gw.router.adapters.models(gw.router.layers):  # fine-tuned adapters (owstack.finetune)
        data.append({"id": model_id, "object": "model", "created": _CREATED, "owned_by": "owstack", "owstack": info})
    return data


def _anthropic(model: JSON) -> JSON:
    created = datetime.fromtimestamp(model["created"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": model["id"], "display_name": model["id"], "created_at": created}


def _wants_anthropic(ctx: RequestContext) -> bool:
    return "anthropic-version" in ctx.headers


async def list_models(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    await gw.authenticate(ctx)
    data = catalog(gw)
    body: JSON
    if _wants_anthropic(ctx):
        listed = [_anthropic(m) for m in data]
        body = {"data": listed, "has_more": False, "first_id": listed[0]["id"], "last_id": listed[-1]["id"]}
    else:
        body = {"object": "list", "data": data}
    await send_json(send, 200, orjson.dumps(body), [(b"x-request-id", ctx.request_id.encode())])


async def get_model(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    await gw.authenticate(ctx)
    wanted = scope["path_params"]["id"]
    found = next((m for m in catalog(gw) if m["id"] == wanted), None)
    if found is None:
        raise ModelNotFound(f"The model `{wanted}` does not exist; GET /v1/models lists the models", param="model")
    body = _anthropic(found) if _wants_anthropic(ctx) else found
    await send_json(send, 200, orjson.dumps(body), [(b"x-request-id", ctx.request_id.encode())])
