"""A fake backend for in-process tests: it implements the Backend protocol and answers from a script.

    FakeBackend("fake", replies=[Reply(text="hi"), Reply(calls=[("lookup", {"city": "Paris"})])])

Each request takes the next reply (the last one repeats). A reply is text, reasoning, tool calls, a finish
reason, a stop string (reported as vLLM does, in the choice's `stop_reason`), or an error raised before the
first chunk. Streams are chopped into small deltas, as engines send them. Every request is kept in
`requests` so a test can assert on what the gateway sent upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from owstack.errors import OwstackError
from owstack.types import JSON, ChatRequest, Completion, Usage


@dataclass
class Reply:
    text: str = ""
    reasoning: str = ""
    calls: Sequence[tuple[str, dict[str, Any]]] = ()
    finish: str | None = None
    stop: str | None = None
    error: OwstackError | None = None
    usage: tuple[int, int] = (12, 5)
    #: stream only: raise this after the text (an upstream that breaks mid-stream)
    fail_mid_stream: OwstackError | None = None


@dataclass
class FakeBackend:
    name: str
    replies: list[Reply] = field(default_factory=lambda: [Reply(text="hello")])
    engine: str = "vllm"
    model: str = "fake-model"
    jurisdiction: str = "local"
    proprietary: bool = False
    requests: list[ChatRequest] = field(default_factory=list)

    def _next(self, request: ChatRequest) -> Reply:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if reply.error is not None:
            raise reply.error
        return reply

    def _finish(self, reply: Reply) -> str:
        return reply.finish or ("tool_calls" if reply.calls else "stop")

    def _calls(self, reply: Reply) -> list[JSON]:
        return [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": name, "arguments": orjson.dumps(args).decode()},
            }
            for i, (name, args) in enumerate(reply.calls)
        ]

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def complete(self, request: ChatRequest) -> Completion:
        reply = self._next(request)
        message: JSON = {"role": "assistant", "content": reply.text or None}
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if reply.calls:
            message["tool_calls"] = self._calls(reply)
        choice: JSON = {"index": 0, "message": message, "finish_reason": self._finish(reply)}
        if reply.stop is not None:
            choice["stop_reason"] = reply.stop
        usage = Usage(prompt_tokens=reply.usage[0], completion_tokens=reply.usage[1], reported=True)
        body = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": self.model}
        body |= {"choices": [choice], "usage": usage.to_openai()}
        return Completion(body=body, usage=usage, finish_reason=self._finish(reply))

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        reply = self._next(request)
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": self.model}

        def chunk(delta: JSON, finish: str | None = None, **extra: Any) -> JSON:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **extra}]}

        yield chunk({"role": "assistant", "content": ""})
        for i in range(0, len(reply.reasoning), 4):
            yield chunk({"reasoning_content": reply.reasoning[i : i + 4]})
        for i in range(0, len(reply.text), 3):
            yield chunk({"content": reply.text[i : i + 3]})
        for index, call in enumerate(self._calls(reply)):
            fn = call["function"]
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": fn["name"], "arguments": ""},
                        }
                    ]
                }
            )
            args = fn["arguments"]
            for i in range(0, len(args), 5):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i : i + 5]}}]})
        if reply.fail_mid_stream is not None:
            raise reply.fail_mid_stream
        extra = {"stop_reason": reply.stop} if reply.stop is not None else {}
        yield chunk({}, self._finish(reply), **extra)
        yield {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": reply.usage[0],
                "completion_tokens": reply.usage[1],
                "total_tokens": sum(reply.usage),
            },
        }

    async def list_models(self) -> list[str]:
        return [self.model]

    async def health(self, timeout: float = 2.0) -> bool:
        return True
