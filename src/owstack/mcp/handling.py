"""One MCP request under the gateway's rules, whichever path carries it (the SDK server or the lean edge).

    result = await handle(recorder, caller, "tools/call", "files.read", work, size=len_of_wire_form)

Before: the audit log must be writable and the tenant's rate cap must admit the request. Then `work` runs
(the service: allowlist, pins, content checks, the upstream). After, on every outcome: the records
(metrics, the ledger row of a tool call, the audit record, fsynced before the answer leaves). owstack's
typed errors become JSON-RPC errors (`owstack.mcp.errors`); an error the upstream answered passes as it is.
A request cancelled is recorded as its client's cancel (`cancelled`, 499), or, when the gateway cut it at
the end of its shutdown grace (`Recorder.cutting`), as cut (`shutdown`, 503).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from mcp.shared.exceptions import MCPError

from owstack.errors import OwstackError
from owstack.mcp.errors import to_mcp
from owstack.mcp.policy import Caller
from owstack.mcp.records import McpRequest, Recorder
from owstack.mcp.sessions import LeanCall

R = TypeVar("R")


async def handle(
    recorder: Recorder,
    caller: Caller,
    method: str,
    name: str | None,
    work: Callable[[McpRequest], Awaitable[R]],
    size: Callable[[R], int],
    path: str = "sdk",
    call: LeanCall | None = None,
) -> R:
    """Run `work` for one request and record it; raises `MCPError` for every refusal or failure. `call`: the
    lean edge's handle on the request, which knows whether its client cancelled it (on the SDK's path a
    cancel while the gateway is cutting its requests is taken for the cut)."""
    req = McpRequest(caller.request_id, caller.tenant, caller.key_id, caller.client, method, name=name, path=path)
    try:
        recorder.check_audit()
        await recorder.admit(caller.tenant)
        result = await work(req)
        req.result_bytes = size(result)
    except OwstackError as exc:
        req.fail(exc.code, exc.status, refused=exc.status < 500)
        await recorder.finish(req)
        raise to_mcp(exc) from None
    except MCPError as exc:
        req.fail(f"upstream_{exc.code}", 502, refused=False)
        await recorder.finish(req)
        raise
    except Exception:
        req.fail("internal_error", 500, refused=False)
        await recorder.finish(req)
        raise
    except BaseException:  # cancelled: by its client, or cut by the gateway at the end of its shutdown grace
        if recorder.cutting if call is None else not call.cancelled:
            req.fail("shutdown", 503, refused=False)
        else:
            req.fail("cancelled", 499, refused=False)
        with anyio.CancelScope(shield=True):
            await recorder.finish(req)
        raise
    try:
        await recorder.finish(req)
    except OwstackError as exc:
        raise to_mcp(exc) from None
    return result
