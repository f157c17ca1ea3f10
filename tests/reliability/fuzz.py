"""Hostile request bodies for the gateway's generation endpoints, reproducible from a seed.

    for kind, body in bodies(seed=1, n=500): ...      bytes to POST, and what made them (for the report)

Kinds: JSON nested hundreds to tens of thousands of levels deep (arrays, objects, inside `messages` and at
the top), numbers past any float or int64 (1e400, 10**500, -0, NaN/Infinity literals), invalid UTF-8 (lone
continuation bytes, overlong forms, surrogates encoded as UTF-8), truncated and byte-flipped copies of
valid bodies, valid JSON of the wrong types in every field, huge strings and arrays, duplicate keys,
control characters and BOMs. None of them may get a 5xx or crash the process: each must get a 4xx in the
API's own error shape (or a 200 when the body happens to be valid).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

VALID = {"model": "edge", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}


def _nested(depth: int, rng: random.Random) -> str:
    kinds = [("[", "]"), ('{"a":', "}"), ('{"content":', "}")]
    opens, closes = [], []
    for _ in range(depth):
        o, c = rng.choice(kinds)
        opens.append(o)
        closes.append(c)
    return "".join(opens) + "1" + "".join(reversed(closes))


def _valid_json(rng: random.Random) -> bytes:
    return json.dumps(VALID).encode()


def _deep(rng: random.Random) -> bytes:
    depth = rng.choice([100, 250, 600, 1023, 1025, 5000, 50_000])
    where = rng.choice(["top", "content", "messages", "tools"])
    inner = _nested(depth, rng)
    if where == "top":
        return inner.encode()
    if where == "content":
        return ('{"model":"edge","messages":[{"role":"user","content":' + inner + "}]}").encode()
    if where == "tools":
        return ('{"model":"edge","messages":[{"role":"user","content":"x"}],"tools":' + inner + "}").encode()
    return ('{"model":"edge","messages":' + inner + "}").encode()


def _numbers(rng: random.Random) -> bytes:
    value = rng.choice(
        ["1e400", "-1e400", "1" + "0" * 500, "-" + "9" * 400, "NaN", "Infinity", "-Infinity", "1e-400", "-0",
         "18446744073709551616", "0.0000000000000000000000000000001", "1.5e308", "9" * 5000]
    )  # fmt: skip
    field = rng.choice(["max_tokens", "temperature", "top_p", "n", "seed", "presence_penalty", "logit_bias"])
    if field == "logit_bias":
        return (
            '{"model":"edge","messages":[{"role":"user","content":"x"}],"logit_bias":{"' + value + '":' + value + "}}"
        ).encode()
    return ('{"model":"edge","messages":[{"role":"user","content":"x"}],"' + field + '":' + value + "}").encode()


def _utf8(rng: random.Random) -> bytes:
    bad = rng.choice(
        [b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xff\xfe", b"\xe2\x82", b"\xf4\x90\x80\x80"]
    )
    where = rng.choice(["content", "model", "key", "raw"])
    if where == "raw":
        return bad + json.dumps(VALID).encode()
    if where == "key":
        return b'{"model":"edge","' + bad + b'":1,"messages":[{"role":"user","content":"x"}]}'
    if where == "model":
        return b'{"model":"' + bad + b'","messages":[{"role":"user","content":"x"}]}'
    return b'{"model":"edge","messages":[{"role":"user","content":"a' + bad + b'b"}]}'


def _mangled(rng: random.Random) -> bytes:
    raw = bytearray(json.dumps(VALID).encode())
    op = rng.choice(["truncate", "flip", "insert", "delete"])
    at = rng.randrange(len(raw))
    if op == "truncate":
        return bytes(raw[:at])
    if op == "flip":
        raw[at] ^= 1 << rng.randrange(8)
    elif op == "insert":
        raw[at:at] = bytes([rng.randrange(256)])
    else:
        del raw[at]
    return bytes(raw)


_ODD = [None, True, 0, -1, 1.5, "", "x" * 70_000, [], {}, [None], {"": None}, [[[]]], ["edge"] * 1000]


def _types(rng: random.Random) -> bytes:
    body: dict[str, object] = json.loads(json.dumps(VALID))
    field = rng.choice(["model", "messages", "max_tokens", "stream", "tools", "tool_choice", "stop", "role",
                        "content", "response_format", "n", "stream_options", "user", "metadata"])  # fmt: skip
    value = rng.choice(_ODD)
    if field in ("role", "content"):
        body["messages"] = [{"role": "user", "content": "x", field: value}]
    else:
        body[field] = value
    return json.dumps(body).encode()


def _shapes(rng: random.Random) -> bytes:
    return rng.choice(
        [
            b"",
            b" ",
            b"null",
            b"[]",
            b"\xef\xbb\xbf" + json.dumps(VALID).encode(),  # a BOM
            b'{"model":"edge","model":"coding","messages":[{"role":"user","content":"x"}]}',
            json.dumps({**VALID, "messages": [{"role": "user", "content": "x"}] * 20_000}).encode(),
            json.dumps({**VALID, "messages": [{"role": "user", "content": "\x00\x01\x1b[31m\u202e"}]}).encode(),
            b'{"model":"edge","messages":[{"role":"user","content":"x"}]' + b" " * 100_000,
            b'{"model":"edge","messages":[{"role":"user","content":"x"}]}garbage',
        ]
    )


GENERATORS = {
    "valid": _valid_json,
    "nesting": _deep,
    "numbers": _numbers,
    "invalid utf-8": _utf8,
    "mangled": _mangled,
    "wrong types": _types,
    "odd shapes": _shapes,
}


def bodies(seed: int, n: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)
    names = list(GENERATORS)
    for i in range(n):
        kind = names[i % len(names)]
        yield kind, GENERATORS[kind](rng)


# Every endpoint, one value planted deep inside a valid body ------------------------------------------------
#: valid bodies with the nested structures each endpoint translates (items, blocks, tools, formats)
RICH: dict[str, dict[str, object]] = {
    "/v1/chat/completions": {
        **VALID,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "stop": ["x"],
        "logit_bias": {"42": 1},
    },
    "/v1/messages": {
        **VALID,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "42"}]}],
            },
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 64},
        "metadata": {"user_id": "u"},
        "stop_sequences": ["x"],
    },
    "/v1/responses": {
        "model": "edge",
        "instructions": "be brief",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "hi"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA=="},
                ],
            },
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "s"}],
                "content": [{"type": "reasoning_text", "text": "r"}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "42"}]},
        ],
        "tools": [
            {"type": "function", "name": "f", "parameters": {"type": "object"}},
            {"type": "namespace", "name": "n", "tools": [{"type": "function", "name": "g"}]},
            {
                "type": "custom",
                "name": "c",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: /x/"},
            },
        ],
        "tool_choice": {"type": "function", "name": "f"},
        "reasoning": {"effort": "low"},
        "include": ["reasoning.encrypted_content"],
        "text": {"verbosity": "low"},
        "max_output_tokens": 16,
    },
    "/v1/completions": {
        "model": "edge",
        "prompt": ["hi", "there"],
        "stream": True,
        "stream_options": {"include_usage": True},
    },
    "/v1/embeddings": {"model": "edge", "input": [[1, 2, 3], [4]], "encoding_format": "float"},
    "/v1/messages/count_tokens": {
        "model": "edge",
        "system": "be brief",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    },
}
_PLANTED = [None, True, 0, -1, 1.5, 2**70, "", "x", [], {}, [None], [5], ["x"], {"a": 1}, {"type": "x"}, "\ud7ff"]


def _nodes(value: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """The path of every value inside `value` (the root excluded)."""
    out: list[tuple[object, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        out.append((*path, key))
        out += _nodes(inner, (*path, key))
    return out


def planted(path: str, seed: int, n: int) -> Iterator[tuple[str, bytes]]:
    """`n` copies of `RICH[path]`, each with one value somewhere inside replaced by a value of another kind
    (or a key added beside it): the class that found nested fields the schemas left untyped."""
    rng = random.Random(seed)
    base = RICH[path]
    spots = _nodes(base)
    for _ in range(n):
        body = json.loads(json.dumps(base))
        where = rng.choice(spots)
        parent = body
        for key in where[:-1]:
            parent = parent[key]
        value = rng.choice(_PLANTED)
        if isinstance(parent, dict) and rng.random() < 0.2:
            parent[rng.choice(["type", "content", "text", "tools", "source", "format", "input"])] = value
        else:
            parent[where[-1]] = value
        yield "/".join(map(str, where)), json.dumps(body).encode()


# Raw HTTP heads the parser or the server's limits refuse (for a server on a socket) ----------------------
HEADS: list[bytes] = [
    b"GARBAGE\r\n\r\n",
    b"GET /v1/models HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /v1/\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /v1/models?" + b"q" * 70_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nNo-Colon\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}",
    b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)),  # a TLS hello on the plain port
]
