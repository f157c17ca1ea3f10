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
    return _mutated(bytearray(json.dumps(VALID).encode()), rng)


def _mutated(raw: bytearray, rng: random.Random) -> bytes:
    """`raw` cut short, or with one bit flipped, one byte inserted or one deleted, somewhere."""
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


# Hostile `/mcp` traffic: JSON-RPC envelopes and the transport's headers ----------------------------------
#: a valid tools/call (the test adds the revision's `_meta` and headers, and a progress token for the SDK path)
MCP_CALL: dict[str, object] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "local.echo", "arguments": {"text": "hi"}},
}
MCP_LIST: dict[str, object] = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
#: ids, names, arguments and cursors of every kind a JSON-RPC field should not hold
_MCP_ODD: list[object] = [None, True, False, 0, -1, 1.5, 2**63 - 1, "", "x" * 100_000, [], {}, [1], {"a": 1}, "\x00"]
_NUMBERS = ["1e400", "-1e400", "NaN", "Infinity", "-0", "1e-400", str(2**64), str(-(2**63) - 1), "9" * 400, "1.5e308"]
_BAD_BYTES = [b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff\xfe", b"\xe2\x82", b"\xf4\x90\x80\x80"]
_SURROGATES = ["\\ud800", "a\\udfffb", "\\udbff\\udbff"]
_PLACES = ["arguments", "_meta", "id", "params", "name", "top"]


def _mcp_copy(base: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = json.loads(json.dumps(base))
    return out


def _plant(base: dict[str, object], where: str, raw: str) -> bytes:
    """`base` with the JSON text `raw` as the value at `where` (raw, so that values json cannot write fit)."""
    marker = "\u2603MARK\u2603"
    body = _mcp_copy(base)
    params = body.setdefault("params", {})
    assert isinstance(params, dict)
    if where == "arguments":
        params["arguments"] = {"text": "hi", "v": marker}
    elif where == "_meta":
        meta = params.setdefault("_meta", {})
        assert isinstance(meta, dict)
        meta["v"] = marker
    elif where == "id":
        body["id"] = marker
    elif where == "params":
        body["params"] = marker
    elif where == "name":
        params["name"] = marker
    else:
        return raw.encode("utf-8", "surrogatepass")
    return json.dumps(body).replace(json.dumps(marker), raw).encode("utf-8", "surrogatepass")


def _mcp_valid(base: dict[str, object], rng: random.Random) -> tuple[bytes, dict[str, str | None]]:
    return json.dumps(base).encode(), {}


def _mcp_deep(base: dict[str, object], rng: random.Random) -> tuple[bytes, dict[str, str | None]]:
    depth = rng.choice([62, 65, 100, 254, 300, 1000, 5000])
    return _plant(base, rng.choice(_PLACES), _nested(depth, rng)), {}


def _mcp_numbers(base: dict[str, object], rng: random.Random) -> tuple[bytes, dict[str, str | None]]:
    return _plant(base, rng.choice(["arguments", "_meta", "id", "name"]), rng.choice(_NUMBERS)), {}


def _mcp_text(base: dict[str, object], rng: random.Random) -> tuple[bytes, dict[str, str | None]]:
    """Invalid UTF-8, lone surrogates, control characters and huge strings in the envelope's strings."""
    where = rng.choice(["arguments", "_meta", "id", "name"])
    kind = rng.choice(["bytes", "surrogate", "control", "huge"])
    if kind == "bytes":
        return _plant(base, where, '"a<BAD>b"').replace(b"<BAD>", rng.choice(_BAD_BYTES)), {}
    if kind == "surrogate":
        return _plant(base, where, f'"{rng.choice(_SURROGATES)}"'), {}
    if kind == "control":
        return _plant(base, where, json.dumps("\x00\x1b[31m\u202e\ufeff")), {}
    return _plant(base, where, json.dumps("x" * rng.choice([70_000, 1_000_000]))), {}


def _mcp_shapes(base: dict[str, object], rng: random.Random) -> tuple[bytes, dict[str, str | None]]:
    """Wrong JSON-RPC shapes: batches, `jsonrpc` missing or odd, ids of every kind, params not an object,
    unknown methods, notifications with ids, bodies that are not objects."""
    body = _mcp_copy(base)
    op = rng.choice(["batch", "jsonrpc", "id", "no-id", "params", "method", "notification", "not-object", "extra"])
    if op == "batch":
        return json.dumps([body] * rng.choice([1, 2, 50]) if rng.random() < 0.8 else []).encode(), {}
    if op == "jsonrpc":
        value = rng.choice([None, "1.0", 2.0, "", "2.0 ", ["2.0"]])
        if value is None:
            del body["jsonrpc"]
        else:
            body["jsonrpc"] = value
    elif op == "id":
        body["id"] = rng.choice([*_MCP_ODD, 10**30, -(2**63), 1e300, "7" * 10_000])
    elif op == "no-id":
        del body["id"]
    elif op == "params":
        body["params"] = rng.choice([None, [], ["local.echo"], "x", 5, True])
    elif op == "method":
        body["method"] = rng.choice(["tools/cal", "", "TOOLS/CALL", "rpc.discover", "notifications/initialized",
                                     "initialize", "ping", "tasks/get", 5, None, ["tools/call"]])  # fmt: skip
    elif op == "notification":
        body["method"] = rng.choice(["notifications/cancelled", "notifications/initialized", "notifications/x"])
    elif op == "not-object":
        return rng.choice([b"null", b"1", b'"tools/call"', b"true", b"[[]]", b"{}", b""]), {}
    else:
        body[rng.choice(["result", "error", "extra", "Id", "__proto__"])] = rng.choice(_MCP_ODD)
    return json.dumps(body).encode(), {}


def _mcp_types(base: dict[str, object], rng: random.Random) -> tuple[bytes, dict[str, str | None]]:
    """Valid JSON-RPC with the wrong type in `name`, `arguments`, `cursor`, `_meta` or the progress token."""
    body = _mcp_copy(base)
    params = body["params"]
    assert isinstance(params, dict)
    field = rng.choice(["name", "arguments", "cursor", "_meta", "progressToken", "task"])
    value = rng.choice(_MCP_ODD)
    if field == "progressToken":
        meta = params.setdefault("_meta", {})
        if isinstance(meta, dict):
            meta["progressToken"] = value
    elif field == "_meta" and isinstance(params.get("_meta"), dict) and rng.random() < 0.5:
        meta = params["_meta"]
        meta[rng.choice(list(meta) or ["x"])] = value
    else:
        params[field] = value
    return json.dumps(body).encode(), {}


def _mcp_headers(base: dict[str, object], rng: random.Random) -> tuple[bytes, dict[str, str | None]]:
    """A valid body with a transport header garbled, missing or disagreeing with it (None: header removed)."""
    name = rng.choice(["Mcp-Session-Id", "MCP-Protocol-Version", "Mcp-Name", "Mcp-Method", "Accept", "Content-Type"])
    values: dict[str, list[str | None]] = {
        "Mcp-Session-Id": [None, "", "x", "0" * 64, "../../etc", "ñ".encode().decode("latin-1"), "a" * 5000],
        "MCP-Protocol-Version": [None, "", "2099-01-01", "2024-11-05", "2026-07-28", "2025-06-18", "garbage"],
        "Mcp-Name": [None, "", "local.slow", "other.echo", "x" * 3000],
        "Mcp-Method": [None, "", "tools/list", "initialize", "TOOLS/CALL"],
        "Accept": [None, "", "*/*", "application/json", "text/event-stream", "text/html", "application/*, text/*"],
        "Content-Type": [None, "", "text/plain", "application/json; charset=latin-1", "APPLICATION/JSON",
                         "application/json, text/plain", "application/jsonx", "multipart/form-data"],
    }  # fmt: skip
    return json.dumps(base).encode(), {name: rng.choice(values[name])}


def _mcp_mangled(base: dict[str, object], rng: random.Random) -> tuple[bytes, dict[str, str | None]]:
    return _mutated(bytearray(json.dumps(base).encode()), rng), {}


MCP_GENERATORS = {
    "valid": _mcp_valid,
    "nesting": _mcp_deep,
    "numbers": _mcp_numbers,
    "text": _mcp_text,
    "shapes": _mcp_shapes,
    "wrong types": _mcp_types,
    "headers": _mcp_headers,
    "mangled": _mcp_mangled,
}


def mcp_requests(
    bases: dict[str, dict[str, object]], seed: int, n: int
) -> Iterator[tuple[str, str, bytes, dict[str, str | None]]]:
    """`n` hostile requests built on the valid `bases` (one per way of calling: revision, path, method):
    (kind, way, body, header changes). Every kind on every way in turn, the same at every run of a seed."""
    rng = random.Random(seed)
    kinds, ways = list(MCP_GENERATORS), sorted(bases)
    for i in range(n):
        kind, way = kinds[i % len(kinds)], ways[(i // len(kinds)) % len(ways)]
        body, headers = MCP_GENERATORS[kind](bases[way], rng)
        yield kind, way, body, headers
