"""The typed per-request context: everything a stage learns about one request lives here."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from owstack.types import ChatRequest, Usage

if TYPE_CHECKING:
    from owstack.errors import OwstackError
    from owstack.protocols.base import WireProtocol
    from owstack.routing.primed import PrimedStream
    from owstack.routing.router import Route
    from owstack.types import Completion


@dataclass(slots=True)
class Attempt:
    """One try against one backend."""

    backend: str
    outcome: str  # "ok", or the error code that made the router move on
    latency_s: float


@dataclass(slots=True)
class RequestContext:
    request_id: str
    #: the wire protocol's name (openai, anthropic, responses), for the ledger and the audit log
    protocol: str = "openai"
    #: the wire protocol that received the request: it parses the body and encodes the answer
    wire: WireProtocol | None = None
    #: what that protocol keeps between parsing and encoding (e.g. the Responses API's `Turn`)
    wire_state: Any = None
    #: lower-cased request headers
    headers: dict[str, str] = field(default_factory=dict)
    client: str | None = None
    received_at: float = field(default_factory=time.time)  # wall clock, UTC epoch seconds
    started: float = field(default_factory=time.perf_counter)

    # authenticate
    tenant: str = "default"
    key_id: str | None = None
    #: the tenant's policy object (tenancy), None when the gateway runs open
    policy: Any = None
    #: the layers the key may use (None: all)
    allowed_layers: frozenset[str] | None = None

    # parse
    #: reads the request body, enforcing the size limit (set by the protocol edge)
    read_body: Callable[[], Awaitable[bytes]] | None = None
    body: bytes = b""
    request: ChatRequest | None = None
    #: the request's own `reasoning_policy` field (resolved against header, tenant and layer by shape)
    reasoning_request: str | None = None

    # route
    route: Route | None = None
    layer: str | None = None
    route_reason: str = ""
    #: backend names in the order the call stage will try them (replicas first, then fallbacks)
    candidates: list[str] = field(default_factory=list)
    #: backends left out by the tenant's residency policy
    residency_excluded: list[str] = field(default_factory=list)

    # shape
    reasoning_policy: str | None = None

    # call
    result: Completion | PrimedStream | None = None
    #: how a stream ended: "ok", "failed" (upstream broke mid-stream) or "abandoned" (client went away)
    stream_outcome: str | None = None
    backend: str | None = None
    engine: str | None = None
    model: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    first_byte_at: float | None = None  # perf_counter when the first byte went to the client
    finished_at: float | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    #: the stop string that ended the output, when the engine says which (vLLM's `stop_reason`)
    stop_sequence: str | None = None
    #: the generated text, kept for token counting, audit HMACs and guard checks (bounded by max_tokens)
    output_text: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    client_disconnected: bool = False
    #: run in a task of the gateway's own (a background response): a cancel comes from that task's owner,
    #: which records the outcome, not from the server cutting a client's request at shutdown
    owned: bool = False

    # outcome
    status: int = 200
    error: OwstackError | None = None

    #: extra response headers stages want sent (e.g. the AI-generated marker)
    response_headers: dict[str, str] = field(default_factory=dict)
    #: free-form notes stages leave for the ones after them (typed fields above are preferred)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def fallbacks(self) -> int:
        """How many times the call moved on to another backend."""
        return max(0, len(self.attempts) - 1)

    @property
    def latency_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_byte_at is None else self.first_byte_at - self.started
