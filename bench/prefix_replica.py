"""Mock vLLM replicas that model a prefix cache, for bench/prefix_routing.py and the scale tests.

    python bench/prefix_replica.py 9001 9002 9003 [--prefill-ms-per-kb 2] [--decode-ms 10] [--cache-kb 512]

One process serves one replica per port (OpenAI-compatible `/v1/chat/completions`, streaming or not,
`/health`, `/stats`, `POST /reset`). Each replica behaves like an engine with automatic prefix caching:

- the prompt (each message as canonical JSON) is cut into blocks of `BLOCK` bytes, each block identified by
  a hash of everything up to its end (as vLLM's block hashes are);
- the leading blocks already in the replica's cache are free; the rest is prefilled at `prefill-ms-per-kb`,
  one prefill at a time per replica (the GPU's compute is shared: a queue of prefills is what makes a
  cache miss cost everyone), so time to first token = waiting for the GPU + uncached KB x ms per KB;
- tokens then follow every `decode-ms` (decoding is batched: requests decode side by side);
- the cache holds `cache-kb` of blocks, least recently used out first; a finished request leaves its prompt
  and its answer cached (the next turn of a conversation resends both);
- `usage.prompt_tokens_details.cached_tokens` says how much was cached (4 bytes a token), as vLLM reports it.

Nothing here is owstack: the replicas know only what reaches them over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from collections import OrderedDict
from typing import Any

import orjson

BLOCK = 256
BYTES_PER_TOKEN = 4


def blocks(messages: list[Any]) -> list[bytes]:
    data = b"\n".join(orjson.dumps(m, option=orjson.OPT_SORT_KEYS) for m in messages)
    digest = hashlib.blake2b(digest_size=16)
    out = []
    for start in range(0, len(data), BLOCK):
        digest.update(data[start : start + BLOCK])
        out.append(digest.copy().digest())
    return out


class Replica:
    def __init__(self, name: str, *, prefill_s_per_kb: float, decode_s: float, cache_kb: int) -> None:
        self.name = name
        self.prefill_s_per_kb = prefill_s_per_kb
        self.decode_s = decode_s
        self.capacity = max(1, cache_kb * 1024 // BLOCK)
        self.cache: OrderedDict[bytes, None] = OrderedDict()
        self.gpu = asyncio.Lock()
        self.stats = {"requests": 0, "prompt_bytes": 0, "cached_bytes": 0, "prefill_s": 0.0, "in_flight": 0}

    def reset(self) -> None:
        self.cache.clear()
        self.stats = {"requests": 0, "prompt_bytes": 0, "cached_bytes": 0, "prefill_s": 0.0, "in_flight": 0}

    def cached_prefix(self, keys: list[bytes]) -> int:
        n = 0
        for key in keys:
            if key not in self.cache:
                break
            self.cache.move_to_end(key)
            n += 1
        return n

    def keep(self, keys: list[bytes]) -> None:
        for key in keys:
            self.cache[key] = None
            self.cache.move_to_end(key)
        while len(self.cache) > self.capacity:
            self.cache.popitem(last=False)

    async def prefill(self, messages: list[Any]) -> tuple[int, int]:
        """Wait for the GPU, compute the uncached part; (prompt bytes, cached bytes)."""
        keys = blocks(messages)
        size = len(keys) * BLOCK
        async with self.gpu:
            hit = self.cached_prefix(keys)
            work = (len(keys) - hit) * BLOCK / 1024 * self.prefill_s_per_kb
            if work:
                await asyncio.sleep(work)
            self.keep(keys)
        self.stats["requests"] += 1
        self.stats["prompt_bytes"] += size
        self.stats["cached_bytes"] += hit * BLOCK
        self.stats["prefill_s"] += work
        return size, hit * BLOCK

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # served with lifespan="off"
            return
        path = scope["path"]
        if path == "/health":
            await _json(send, {"ok": True})
        elif path == "/stats":
            await _json(send, {"name": self.name, **self.stats, "cache_blocks": len(self.cache)})
        elif path == "/reset":
            self.reset()
            await _json(send, {"ok": True})
        elif path == "/v1/models":
            await _json(send, {"object": "list", "data": [{"id": "mock", "object": "model"}]})
        elif path == "/v1/chat/completions":
            body = orjson.loads(await _read(receive))
            self.stats["in_flight"] += 1
            try:
                await self.complete(body, send)
            finally:
                self.stats["in_flight"] -= 1
        else:
            await _json(send, {"error": {"message": "not found"}}, 404)

    async def complete(self, body: dict[str, Any], send: Any) -> None:
        messages = body.get("messages") or []
        n = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        size, cached = await self.prefill(messages)
        words = [f"w{i}" for i in range(n)]
        usage = {
            "prompt_tokens": size // BYTES_PER_TOKEN,
            "completion_tokens": n,
            "total_tokens": size // BYTES_PER_TOKEN + n,
            "prompt_tokens_details": {"cached_tokens": cached // BYTES_PER_TOKEN},
        }
        answer = " ".join(words)
        base = {"id": f"chatcmpl-{self.name}", "created": int(time.time()), "model": body.get("model", "mock")}
        if not body.get("stream"):
            await asyncio.sleep(self.decode_s * n)
            self.keep(blocks([*messages, {"role": "assistant", "content": answer}]))
            choice = {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            await _json(send, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            return
        headers = [(b"content-type", b"text/event-stream"), (b"x-replica", self.name.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, word in enumerate(words):
            delta = {"role": "assistant", "content": word if i == 0 else " " + word}
            await _event(send, {**base, "object": "chat.completion.chunk", "choices": [_choice(delta)]})
            await asyncio.sleep(self.decode_s)
        self.keep(blocks([*messages, {"role": "assistant", "content": answer}]))
        await _event(send, {**base, "object": "chat.completion.chunk", "choices": [_choice({}, "stop")]})
        if (body.get("stream_options") or {}).get("include_usage"):
            await _event(send, {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish}


async def _event(send: Any, obj: dict[str, Any]) -> None:
    await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(obj) + b"\n\n", "more_body": True})


async def _read(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _json(send: Any, obj: Any, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": orjson.dumps(obj)})


async def serve(ports: list[int], args: argparse.Namespace) -> None:
    import uvicorn

    servers = []
    for port in ports:
        replica = Replica(
            f"replica-{port}",
            prefill_s_per_kb=args.prefill_ms_per_kb / 1000,
            decode_s=args.decode_ms / 1000,
            cache_kb=args.cache_kb,
        )
        config = uvicorn.Config(replica, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        servers.append(uvicorn.Server(config))
    await asyncio.gather(*(s.serve() for s in servers))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ports", type=int, nargs="+")
    p.add_argument("--prefill-ms-per-kb", type=float, default=2.0, help="prefill time per uncached KB (default 2)")
    p.add_argument("--decode-ms", type=float, default=10.0, help="time per generated token (default 10)")
    p.add_argument("--cache-kb", type=int, default=512, help="prefix cache size per replica in KB (default 512)")
    args = p.parse_args(argv)
    asyncio.run(serve(args.ports, args))


if __name__ == "__main__":
    sys.exit(main())
