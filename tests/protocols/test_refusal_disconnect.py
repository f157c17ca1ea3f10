"""A client that sends a whole body and then goes away (a FIN right after it) while its refusal is being
recorded: the disconnect watch cancelled the handler inside its error branch, during the audit record's
append, and the `CancelledError` escaped to the server (uvicorn's "Exception in ASGI application" with a
traceback, for a client's own doing) with the stages after the audit's not finished."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fakes.backend import Reply
from protocols.conftest import gateway

pytestmark = pytest.mark.anyio


def _scope(path: str) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/responses"])
async def test_a_client_gone_while_its_refusal_is_recorded_ends_the_request_quietly(tmp_path: Path, path: str) -> None:
    audit = {"enabled": True, "directory": str(tmp_path / "audit"), "keys_directory": str(tmp_path / "keys")}
    async with gateway(tmp_path, [Reply(text="x")], audit=audit, metering={"enabled": True}) as app:
        messages = [{"type": "http.request", "body": b"{not json", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            return {"type": "http.disconnect"}  # the FIN that followed the body

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await asyncio.wait_for(app.gateway(_scope(path), receive, send), 10)  # raised CancelledError
    assert sent and sent[0]["status"] == 400
