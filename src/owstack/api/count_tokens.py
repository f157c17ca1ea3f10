"""`POST /v1/messages/count_tokens`: the prompt's tokens under the model that would answer it.

Authenticated like a generation, routed like one (so the count uses the routed backend's vocabulary: the
GGUF's own for the embedded engine, an estimate where owstack has no tokenizer), nothing sent upstream.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson

from owstack.api.http import Receive, Scope, Send, body_reader, send_json
from owstack.pipeline.context import RequestContext
from owstack.protocols.anthropic.request import to_chat_request
from owstack.protocols.anthropic.schema import TAGS, CountTokensRequest
from owstack.protocols.body import json_object, validate

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway


async def count_tokens(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    await gw.authenticate(ctx)
    data = json_object(await body_reader(scope, receive, gw.max_body_bytes)())
    validate(CountTokensRequest, data, tags=TAGS)
    # only what was validated is read: a field count_tokens does not take (`metadata`, `stop_sequences`...)
    # is ignored whatever its shape, as it is not checked here
    request, _ = to_chat_request({k: v for k, v in data.items() if k in CountTokensRequest.model_fields})
    route = gw.router.resolve(request)
    backend = next(iter((*route.replicas, *route.fallback)), None)
    counter = await gw.token_counter(backend)
    tools = request.params.get("tools")

    def count() -> int:
        return counter.prompt(request.messages) + (counter.text(orjson.dumps(tools).decode()) if tools else 0)

    tokens = await asyncio.to_thread(count)
    headers = [(b"x-request-id", ctx.request_id.encode()), (b"request-id", ctx.request_id.encode())]
    await send_json(send, 200, orjson.dumps({"input_tokens": tokens}), headers)
