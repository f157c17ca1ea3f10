"""The MCP gateway: agents' tool traffic through owstack, authenticated, pinned, guarded and recorded.

    owstack.mcp.config       the `mcp:` section: upstream servers, tenant tool policy, pins, proxy
    owstack.mcp.endpoint     McpEndpoint: the `/mcp` ASGI handler (authentication, then the lean edge or the SDK)
    owstack.mcp.lean         the lean edge: tools/call and tools/list served beside the SDK, with its checks
    owstack.mcp.sessions     owstack's record of the SDK's 2025-era sessions (owner, revision, idle, cancels)
    owstack.mcp.changes      list changes told to clients (2025 notifications, 2026-07-28 listen streams)
    owstack.mcp.mount        puts the endpoint on the gateway, with the gateway's keys, audit, ledger, limits
    owstack.mcp.server       the `mcp` SDK server: one thin handler per MCP method
    owstack.mcp.handling     one request under the gateway's rules (audit, rate cap, records, JSON-RPC errors)
    owstack.mcp.service      the operations (list, call, prompts, resources) behind both edges
    owstack.mcp.catalog      every upstream's tools behind one name space, and which may be served (pins)
    owstack.mcp.pins         canonical definition digests and the pin store (mcp_pins, migration 0007)
    owstack.mcp.content      poisoned definitions, injected results, secrets both ways
    owstack.mcp.policy       the caller, tenant allowlists
    owstack.mcp.upstreams    upstream servers over stdio (supervised) and HTTP (egress-checked)
    owstack.mcp.lane         the lean lane to an HTTP upstream: one pooled POST per call, on the checked address
    owstack.mcp.listen       an upstream's 2026-07-28 list changes (subscriptions/listen)
    owstack.mcp.egress_http  the SDK's httpx2 client through owstack's SSRF-safe egress transport
    owstack.mcp.records      audit records, ledger rows, metrics of each request; mcp.metrics the collector
    owstack.mcp.proxy        the egress forward proxy (HTTP and CONNECT); mcp.proxy_auth who uses it, and policy

Importing this package is free: the SDK loads only with the modules that need it (never without `mcp.servers`).
"""
