"""The OpenAI Responses protocol (`POST /v1/responses`): items in, response objects and events out.

`previous_response_id` continues a stored conversation of the same tenant; `store` keeps the response (in
the configured database, when the tenant's residency covers the store's jurisdiction) for follow-ups and for
GET/DELETE by id (`api/responses.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from owstack.errors import InvalidRequest, OwstackError
from owstack.protocols.base import Plain
from owstack.protocols.body import json_object, validate
from owstack.protocols.responses import encode
from owstack.protocols.responses.config import ResponsesSection
from owstack.protocols.responses.request import Turn, reasoning_policy, to_chat_request
from owstack.protocols.responses.schema import ResponsesRequest
from owstack.protocols.responses.store import ResponseStore
from owstack.protocols.responses.stream import ResponsesStream
from owstack.tenancy.residency import label_covers
from owstack.types import ChatRequest, Completion

if TYPE_CHECKING:
    from owstack.pipeline.context import RequestContext


class OpenAIResponses(Plain):
    name = "responses"

    def __init__(self, section: ResponsesSection, store: ResponseStore) -> None:
        self.section = section
        self.store = store

    async def parse(self, body: bytes, ctx: RequestContext) -> ChatRequest:
        data = json_object(body)
        validate(ResponsesRequest, data)
        history = []
        previous = data.get("previous_response_id")
        if previous:
            stored = await self.store.get(ctx.tenant, str(previous))
            if stored is None:
                raise InvalidRequest(f"Previous response with id '{previous}' not found.", param="previous_response_id")
            history = stored.items
        request, turn = to_chat_request(data, history)
        turn.store = turn.store and self.storable(ctx)
        if turn.background and not turn.store:
            raise InvalidRequest("background responses must be stored (store: true)", param="background")
        ctx.wire_state = turn
        ctx.reasoning_request = reasoning_policy(data)
        return request

    def storable(self, ctx: RequestContext) -> bool:
        """May this tenant's responses be kept in the store (enabled, and inside its jurisdictions)?"""
        if not self.section.store:
            return False
        policy = ctx.policy
        labels = getattr(policy, "jurisdictions", None)
        return labels is None or any(label_covers(label, self.section.jurisdiction) for label in labels)

    def error(self, error: OwstackError, request_id: str) -> tuple[int, bytes]:
        return error.status, orjson.dumps(error.body())

    def completion(self, ctx: RequestContext, result: Completion) -> bytes:
        turn = _turn(ctx)
        items = encode.output_items(ctx, encode.first_message(result.body), turn)
        status, incomplete = encode.status_of(result.finish_reason)
        turn.final = encode.response(ctx, turn, status=status, output=items, incomplete=incomplete)
        return orjson.dumps(turn.final)

    def encoder(self, ctx: RequestContext) -> ResponsesStream:
        return ResponsesStream(ctx, _turn(ctx))

    async def settle(self, ctx: RequestContext) -> None:
        turn = _turn(ctx)
        if turn.store and turn.final is not None:
            await self.store.put(ctx.tenant, turn.final, [*turn.input_items, *turn.final["output"]])


def _turn(ctx: RequestContext) -> Turn:
    turn = ctx.wire_state
    assert isinstance(turn, Turn)
    return turn
