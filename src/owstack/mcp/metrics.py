"""The MCP gateway's numbers for `GET /metrics` (per process), read at scrape time:

    owstack_mcp_requests_total{tenant,method,outcome}       every MCP request; outcome: ok, error, refused
    owstack_mcp_tool_calls_total{tenant,server,outcome}     tools/call only
    owstack_mcp_tool_call_seconds_sum/_count{server}        time of tools/call through owstack
    owstack_mcp_pin_events_total{server,kind}               tool_changed (rug pull), tool_renamed, tool_poisoned
    owstack_mcp_guard_findings_total{tenant,category}       findings in arguments and results
    owstack_mcp_upstream_restarts_total{server}             reconnections after a crash, hang or lost connection
    owstack_mcp_upstream_up{server}                         1 while connected
    owstack_mcp_edge_requests_total{method,path}            which edge served a request: lean or sdk
    owstack_mcp_upstream_requests_total{server,via}         calls and listings sent on the lean lane or SDK session

Labels are bounded: tenants and servers are the configured ones (else `other`), methods the MCP methods.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from owstack.mcp.upstreams import Upstream

METHODS = frozenset(
    {"initialize", "ping", "tools/list", "tools/call", "prompts/list", "prompts/get", "resources/list",
     "resources/templates/list", "resources/read", "completion/complete", "server/discover"}
)  # fmt: skip
OTHER = "other"


@dataclass(slots=True)
class McpMetrics:
    tenants: frozenset[str]
    servers: frozenset[str]
    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    call_seconds: dict[str, float] = field(default_factory=dict)
    call_count: Counter[str] = field(default_factory=Counter)
    pin_events: Counter[tuple[str, str]] = field(default_factory=Counter)
    findings: Counter[tuple[str, str]] = field(default_factory=Counter)
    edges: Counter[tuple[str, str]] = field(default_factory=Counter)
    upstreams: list[Upstream] = field(default_factory=list)

    def _tenant(self, tenant: str) -> str:
        return tenant if tenant in self.tenants else OTHER

    def _server(self, server: str | None) -> str:
        return server if server in self.servers else ("none" if server is None else OTHER)

    def request(self, tenant: str, method: str, outcome: str, path: str = "sdk") -> None:
        method = method if method in METHODS else OTHER
        self.requests[(self._tenant(tenant), method, outcome)] += 1
        self.edges[(method, path)] += 1

    def call(self, tenant: str, server: str | None, outcome: str, seconds: float) -> None:
        s = self._server(server)
        self.calls[(self._tenant(tenant), s, outcome)] += 1
        self.call_seconds[s] = self.call_seconds.get(s, 0.0) + seconds
        self.call_count[s] += 1

    def pin_event(self, server: str, kind: str) -> None:
        self.pin_events[(self._server(server), kind)] += 1

    def finding(self, tenant: str, categories: Counter[str]) -> None:
        for category, n in categories.items():
            self.findings[(self._tenant(tenant), category.partition(":")[0])] += n


class McpCollector:
    def __init__(self, metrics: McpMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield _counter("owstack_mcp_requests", "MCP requests", ["tenant", "method", "outcome"], m.requests)
        yield _counter("owstack_mcp_tool_calls", "MCP tool calls", ["tenant", "server", "outcome"], m.calls)
        seconds = CounterMetricFamily(
            "owstack_mcp_tool_call_seconds", "Time of tool calls through owstack", labels=["server"]
        )
        for server, total in m.call_seconds.items():
            seconds.add_metric([server], total)
        yield seconds
        yield _counter(
            "owstack_mcp_pin_events", "Tool definitions changed, renamed or poisoned", ["server", "kind"], m.pin_events
        )
        yield _counter(
            "owstack_mcp_guard_findings", "Findings in tool arguments and results", ["tenant", "category"], m.findings
        )
        restarts = CounterMetricFamily("owstack_mcp_upstream_restarts", "Upstream reconnections", labels=["server"])
        up = GaugeMetricFamily("owstack_mcp_upstream_up", "1 while the upstream is connected", labels=["server"])
        for u in m.upstreams:
            restarts.add_metric([u.name], u.restarts)
            up.add_metric([u.name], 1.0 if u.client is not None else 0.0)
        yield restarts
        yield up
        yield _counter("owstack_mcp_edge_requests", "MCP requests by the edge that served them", ["method", "path"],
                       m.edges)  # fmt: skip
        via = CounterMetricFamily(
            "owstack_mcp_upstream_requests", "Upstream tool calls and listings by channel", labels=["server", "via"]
        )
        for u in m.upstreams:
            for channel, n in u.sent.items():
                via.add_metric([u.name, channel], n)
        yield via


def _counter(name: str, doc: str, labels: list[str], values: Mapping[Any, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, n in values.items():
        family.add_metric(list(key), n)
    return family
