"""The responses the HTTP server writes itself (api/server.py), before or instead of the application: a
refused connection, a header or body that did not arrive in time, a request the parser refused or that is
over the size limits. Each is a whole HTTP/1.1 response with `connection: close` and a JSON error in the
shape of the API the request's path belongs to, as the application's own errors are."""

from __future__ import annotations

import httptools
import orjson

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


def answer(status: int, message: str, code: str, *, url: bytes = b"", kind: str = "invalid_request_error") -> bytes:
    """A whole response the server writes itself, before or instead of the application, with
    `connection: close`: a JSON error in the shape of the API the request's path belongs to (Anthropic's for
    /v1/messages, a JSON-RPC error for /mcp, OpenAI's otherwise and when the path is not known yet)."""
    if is_mcp(url.split(b"?", 1)[0].decode("latin-1")):
        body = json_rpc_error(status, message, code)
    elif url.startswith(b"/v1/messages"):
        anthropic = "overloaded_error" if status == 503 else kind if kind != "server_error" else "api_error"
        body = orjson.dumps({"type": "error", "error": {"type": anthropic, "message": message}})
    else:
        body = orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})
    retry = b"retry-after: 1\r\n" if status == 503 else b""
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n%sconnection: close\r\n" % (
        status,
        _REASONS.get(status, b"Error"),
        retry,
    )
    return head + b"content-length: %d\r\n\r\n%s" % (len(body), body)


def is_mcp(path: str) -> bool:
    """The path is the MCP edge's (`/mcp`), whose every answer is JSON-RPC."""
    return path == "/mcp" or path.startswith("/mcp/")


def json_rpc_error(status: int, message: str, code: str, request_id: str | int | None = None) -> bytes:
    """A refusal on `/mcp` made before its handler reads the request (the server's, the gateway's routing and
    browser checks, a body refused as it is read): a JSON-RPC error, with the request's id when it is known,
    `data` as owstack.mcp.errors gives it."""
    rpc = -32600 if status < 500 else -32603  # invalid request; internal error
    error = {"code": rpc, "message": message, "data": {"code": code, "status": status}}
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


def parse_problem(error: BaseException | None) -> str:
    """What httptools found wrong, in words (a callback's failure is the path uvicorn could not decode)."""
    if error is None:
        return ""
    if isinstance(error, httptools.HttpParserCallbackError):
        if isinstance(error.__context__, UnicodeDecodeError):
            return "the request's path is not ASCII; percent-encode other bytes"
        return "the request line or header could not be read"
    return str(error)
