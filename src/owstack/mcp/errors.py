"""How owstack's refusals look on the MCP wire: JSON-RPC errors with stable codes and a `data` object.

JSON-RPC reserves -32000..-32099 for implementation-defined server errors; the `mcp` SDK allocates
-32000..-32019 and the spec -32042, so owstack's own start at -32060. `data.code` carries owstack's error
code (the same as `/v1`'s, e.g. `tool_not_allowed`, `rate_limit_exceeded`) and `data.status` the HTTP
status `/v1` would have answered with.

    -32600  invalid request      a body nested more than 64 levels deep (`too_deep`, status 400; as `/v1`)
    -32602  invalid params       an unknown tool, prompt or resource name (as the MCP spec asks)
    -32060  forbidden            the tenant may not use this tool (allowlist), or the key may not use MCP
    -32061  withheld             the tool's definition is not approved (new, changed or renamed: pinning)
    -32062  blocked              the arguments carry a secret and the policy is `block`
    -32063  upstream unavailable the upstream server is down or restarting, or answered a tool call with a result
                                 that is not valid MCP or that owstack cannot carry (`upstream_invalid_result`,
                                 status 502: nested past 255 levels, integers past 64 bits)
    -32064  upstream timeout     the call took longer than its timeout and was cancelled upstream
    -32065  rate limited         the tenant's requests_per_minute is used up
    -32066  audit unavailable    the audit log cannot be written, so nothing is served
    -32067  ledger unavailable   the tool call's ledger record cannot be made durable (its write-ahead log)
    -32068  shutdown             the gateway cut the request: still running when its shutdown grace ended
"""

from __future__ import annotations

from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from owstack.errors import (
    OwstackError,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)

FORBIDDEN, WITHHELD, BLOCKED, UNAVAILABLE, TIMEOUT, RATE_LIMITED, AUDIT, LEDGER, SHUTDOWN = range(-32060, -32069, -1)


class ToolWithheld(PermissionDenied):
    default_code = "tool_withheld"


class ContentBlocked(PermissionDenied):
    default_code = "content_blocked"


class UpstreamUnavailable(ServiceUnavailable):
    default_code = "upstream_unavailable"


class InvalidResult(UpstreamError):
    """The upstream answered, with what is not a valid MCP result or what owstack cannot carry: its failure."""

    default_code = "upstream_invalid_result"


class UnknownName(OwstackError):
    status = 404
    type = "not_found_error"
    default_code = "unknown_name"


def _code(error: OwstackError) -> int:
    if isinstance(error, UnknownName):
        return INVALID_PARAMS
    if isinstance(error, ToolWithheld):
        return WITHHELD
    if isinstance(error, ContentBlocked):
        return BLOCKED
    if isinstance(error, PermissionDenied):
        return FORBIDDEN
    if isinstance(error, RateLimited):
        return RATE_LIMITED
    if isinstance(error, UpstreamTimeout):
        return TIMEOUT
    if error.code == "audit_unavailable":
        return AUDIT
    if error.code == "ledger_unavailable":
        return LEDGER
    if error.code == "shutdown":
        return SHUTDOWN
    return UNAVAILABLE


def cut() -> MCPError:
    """The answer to a request the gateway cut at the end of its shutdown grace (on either revision)."""
    return to_mcp(ServiceUnavailable("the gateway is shutting down; the request was cut", code="shutdown"))


def to_mcp(error: OwstackError) -> MCPError:
    """The JSON-RPC error for one of owstack's typed errors."""
    return MCPError(_code(error), error.message, {"code": error.code, "status": error.status})
