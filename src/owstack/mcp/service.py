"""The gateway's MCP operations, one method per MCP request kind, independent of any transport.

Every method takes the authenticated `Caller`. Tools go through the catalog (allowlist, pins), arguments
and results through the content checks; prompts and resources are listed and fetched with the same
allowlist (`server.prompt`, `server.<uri>`) and their results checked like tool results.

Resource URIs are prefixed like every other name (`docs.file:///a.md`, templates `docs.file:///{path}`), so
two servers may serve the same URI and a read still goes to exactly one of them: a prefixed URI is routed
by its prefix; a bare URI only when one server listed it (else the error names the prefixed forms).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.shared.inbound import mcp_param_headers

from owstack.mcp.catalog import SEP, Catalog, split
from owstack.mcp.changes import ChangeFeed
from owstack.mcp.content import Verdict, check_arguments, check_result
from owstack.mcp.errors import ContentBlocked, UnknownName
from owstack.mcp.policy import Caller
from owstack.mcp.records import McpRequest
from owstack.mcp.upstreams import Upstream
from owstack.security.guard.offload import off_loop

log = logging.getLogger("owstack.mcp")
Progress = Callable[[float, float | None, str | None], Awaitable[None]]
#: how long a listing waits for one upstream before it is left out of the answer
LIST_TIMEOUT_S = 15.0


def _dump(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(by_alias=True, mode="json", exclude_none=True))


def fresh(result: dict[str, Any]) -> dict[str, Any]:
    """An upstream's result without the envelope fields its own revision stamped (`resultType`, `ttlMs`,
    the upstream's server info in `_meta`): the SDK stamps this connection's own."""
    out = {k: v for k, v in result.items() if k not in ("resultType", "ttlMs", "cacheScope")}
    meta = out.get("_meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if not k.startswith("io.modelcontextprotocol/")}
        out["_meta"] = meta or None
        if not meta:
            del out["_meta"]
    return out


def blocked_result(verdict: Verdict) -> dict[str, Any]:
    names = ", ".join(sorted(verdict.categories))
    text = (
        f"owstack blocked this result: it contained content its policy does not pass ({names}). "
        "Do not retry the same request; ask the user how to proceed."
    )
    return {"content": [{"type": "text", "text": text}], "isError": True}


class McpService:
    def __init__(self, upstreams: dict[str, Upstream], catalog: Catalog, feed: ChangeFeed) -> None:
        self.upstreams = upstreams
        self.catalog = catalog
        self.feed = feed
        #: upstream resource URI -> the servers that listed it (resources/list)
        self.resource_owners: dict[str, set[str]] = {}

    def _upstream(self, server: str) -> Upstream:
        upstream = self.upstreams.get(server)
        if upstream is None:
            raise UnknownName(f"no MCP server named {server!r}")
        return upstream

    async def sync(self, upstream: Upstream) -> None:
        """Re-list one server's tools (start, reconnect, list_changed, and every downstream tools/list);
        clients hear of it when that changed what they may be served."""
        try:
            changed = await asyncio.wait_for(self.catalog.sync(upstream), LIST_TIMEOUT_S)
        except Exception as exc:
            log.warning("mcp: tools of %s not listed: %s", upstream.name, exc)
            return
        if changed:
            await self.feed.changed("tools")

    async def upstream_changed(self, server: str, kind: str) -> None:
        """An upstream (re)connected (`connected`) or said that its tools, prompts or resources changed."""
        upstream = self.upstreams.get(server)
        if upstream is None:
            return
        if kind in ("tools", "connected"):
            await self.sync(upstream)
        if kind in ("resources", "connected"):
            for owners in self.resource_owners.values():
                owners.discard(server)
        for other in ("prompts", "resources"):
            if kind in (other, "connected"):
                await self.feed.changed(other)

    async def pins_changed(self) -> None:
        """Reload approvals (any process may have approved a tool); clients hear of tools released or withheld."""
        if await self.catalog.refresh_pins():
            await self.feed.changed("tools")

    async def _each(self, fn: Callable[[Upstream], Awaitable[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
        live = [u for u in self.upstreams.values() if u.client is not None]

        async def one(u: Upstream) -> list[dict[str, Any]]:
            try:
                return await asyncio.wait_for(fn(u), LIST_TIMEOUT_S)
            except Exception as exc:
                log.warning("mcp: listing of %s failed: %s", u.name, exc)
                return []

        return [item for part in await asyncio.gather(*(one(u) for u in live)) for item in part]

    # tools ----------------------------------------------------------------------------------------
    async def list_tools(self, caller: Caller) -> list[dict[str, Any]]:
        await asyncio.gather(*(self.sync(u) for u in self.upstreams.values() if u.client is not None))
        return self.catalog.visible(caller)

    async def call_tool(
        self, caller: Caller, req: McpRequest, name: str, arguments: dict[str, Any] | None, progress: Progress | None
    ) -> dict[str, Any]:
        entry = self.catalog.resolve(caller, name)
        req.server, req.arguments = entry.server, arguments
        policy = caller.policy
        arguments, verdict = check_arguments(arguments, policy.secrets)
        if verdict.categories:
            req.verdicts["arguments"] = verdict
        if verdict.action == "block":
            raise ContentBlocked(
                f"the arguments of {name!r} carry a secret ({', '.join(sorted(verdict.categories))}); "
                f"tenant {caller.tenant!r} blocks secrets in tool traffic",
                code="secret_in_arguments",
            )
        upstream = self._upstream(entry.server)
        headers = mcp_param_headers(entry.param_headers, arguments or {}) if entry.param_headers else None
        result = fresh(await upstream.call_tool(entry.name, arguments, progress, headers))
        checked, verdict = await off_loop(check_result, result, policy.results, policy.secrets)
        if verdict.categories:
            req.verdicts["result"] = verdict
        if verdict.action == "block":
            checked = blocked_result(verdict)
        return checked

    # prompts --------------------------------------------------------------------------------------
    async def list_prompts(self, caller: Caller) -> list[dict[str, Any]]:
        async def one(u: Upstream) -> list[dict[str, Any]]:
            result = await u.request(lambda c: c.list_prompts())
            return [{**_dump(p), "name": f"{u.name}{SEP}{p.name}"} for p in result.prompts]

        return [p for p in await self._each(one) if caller.may_use(p["name"])]

    async def get_prompt(
        self, caller: Caller, req: McpRequest, name: str, arguments: dict[str, str] | None
    ) -> dict[str, Any]:
        server, prompt = split(name)
        caller.check(name, "prompt")
        req.server = server
        upstream = self._upstream(server)
        result = fresh(_dump(await upstream.request(lambda c: c.get_prompt(prompt, arguments))))
        messages = [m.get("content", {}) for m in result.get("messages", [])]
        _, verdict = await off_loop(check_result, {"content": messages}, caller.policy.results, caller.policy.secrets)
        if verdict.categories:
            req.verdicts["result"] = verdict
        if verdict.action in ("block", "redact"):
            checked, _ = check_result({"content": messages}, "redact", "redact")
            for m, content in zip(result.get("messages", []), checked["content"], strict=True):
                m["content"] = content
        return result

    # resources ----------------------------------------------------------------------------------
    async def list_resources(self, caller: Caller) -> list[dict[str, Any]]:
        async def one(u: Upstream) -> list[dict[str, Any]]:
            result = await u.request(lambda c: c.list_resources())
            out = []
            for r in result.resources:
                item = _dump(r)
                uri = str(item["uri"])
                self.resource_owners.setdefault(uri, set()).add(u.name)
                out.append({**item, "uri": f"{u.name}{SEP}{uri}", "name": f"{u.name}{SEP}{item.get('name', '')}"})
            return out

        return [r for r in await self._each(one) if caller.may_use(r["uri"])]

    async def list_resource_templates(self, caller: Caller) -> list[dict[str, Any]]:
        async def one(u: Upstream) -> list[dict[str, Any]]:
            result = await u.request(lambda c: c.list_resource_templates())
            return [
                {**(t := _dump(template)), "uriTemplate": f"{u.name}{SEP}{t['uriTemplate']}",
                 "name": f"{u.name}{SEP}{t.get('name', '')}", "_server": u.name}
                for template in result.resource_templates
            ]  # fmt: skip

        templates = [t for t in await self._each(one) if caller.may_use(f"{t['_server']}{SEP}*")]
        return [{k: v for k, v in t.items() if k != "_server"} for t in templates]

    def route_resource(self, uri: str) -> tuple[str, str]:
        """(server, the server's own URI) for a URI a client read: by its prefix, or a bare URI one server listed."""
        server, sep, rest = uri.partition(SEP)
        if sep and rest and server in self.upstreams:
            return server, rest
        owners = sorted(self.resource_owners.get(uri, ()))
        if len(owners) == 1:
            return owners[0], uri
        if owners:
            forms = " or ".join(f"{o}{SEP}{uri}" for o in owners)
            raise UnknownName(f"resource {uri!r} is served by {', '.join(owners)}; read {forms}")
        raise UnknownName(f"unknown resource {uri!r}; resources/list shows the resources you may read")

    async def read_resource(self, caller: Caller, req: McpRequest, uri: str) -> dict[str, Any]:
        server, own = self.route_resource(uri)
        qualified = f"{server}{SEP}{own}"
        caller.check(qualified, "resource")
        req.server = server
        result = fresh(_dump(await self._upstream(server).request(lambda c: c.read_resource(own))))
        contents = [
            {**c, "uri": f"{server}{SEP}{c['uri']}"} if isinstance(c, dict) and isinstance(c.get("uri"), str) else c
            for c in result.get("contents", [])
        ]
        policy = caller.policy
        checked, verdict = await off_loop(check_result, {"content": contents}, policy.results, policy.secrets)
        if verdict.categories:
            req.verdicts["result"] = verdict
        if verdict.action == "block":
            text = blocked_result(verdict)["content"][0]["text"]
            return {"contents": [{"uri": qualified, "mimeType": "text/plain", "text": text}]}
        result["contents"] = checked["content"]
        return result
