"""The MCP gateway: agents' tool traffic through owstack, authenticated, pinned, guarded and recorded.

    owstack.mcp.config       the `mcp:` section: upstream servers, tenant tool policy, pins, proxy
    owstack.mcp.endpoint     McpEndpoint: the `/mcp` ASGI handler (the SDK's session manager behind auth)
    owstack.mcp.mount        puts the endpoint on the gateway, with the gateway's keys, audit, ledger, limits
    owstack.mcp.server       the `mcp` SDK server: one thin handler per MCP method
    owstack.mcp.service      the operations (list, call, prompts, resources) behind the handlers
    owstack.mcp.catalog      every upstream's tools behind one name space, and which may be served (pins)
    owstack.mcp.pins         canonical definition digests and the pin store (mcp_pins, migration 0007)
    owstack.mcp.content      poisoned definitions, injected results, secrets both ways
    owstack.mcp.policy       the caller, tenant allowlists
    owstack.mcp.upstreams    upstream servers over stdio (supervised) and HTTP (egress-checked)
    owstack.mcp.egress_http  the SDK's httpx2 client through owstack's SSRF-safe egress transport
    owstack.mcp.records      audit records, ledger rows, metrics of each request; mcp.metrics the collector
    owstack.mcp.proxy        the egress forward proxy (HTTP and CONNECT)

Importing this package is free: the SDK loads only with the modules that need it (never without `mcp.servers`).
"""
