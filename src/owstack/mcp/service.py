"""The gateway's MCP operations, one method per MCP request kind, independent of any transport.

Every method takes the authenticated `Caller`. Tools go through the catalog (allowlist, pins), arguments
and results through the content checks; prompts and resources are listed and fetched with the same
allowlist (`server.prompt`, `server.<uri>`) and their results checked like tool results.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from owstack.mcp.catalog import SEP, Catalog, split
from owstack.mcp.content import Verdict, check_arguments, check_result
from owstack.mcp.errors import ContentBlocked, UnknownName
from owstack.mcp.policy import Caller
from owstack.mcp.records import McpRequest
from owstack.mcp.upstreams import Upstream

log = logging.getLogger("owstack.mcp")
Progress = Callable[[float, float | None, str | None], Awaitable[None]]
#: how long a listing waits for one upstream before it is left out of the answer
LIST_TIMEOUT_S = 15.0


def _dump(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(by_alias=True, mode="json", exclude_none=True))


def blocked_result(verdict: Verdict) -> dict[str, Any]:
    names = ", ".join(sorted(verdict.categories))
    text = (
        f"owstack blocked this result: it contained content its policy does not pass ({names}). "
        "Do not retry the same request; ask the user how to proceed."
    )
    return {"content": [{"type": "text", "text": text}], "isError": True}


class McpService:
    def __init__(self, upstreams: dict[str, Upstream], catalog: Catalog) -> None:
        self.upstreams = upstreams
        self.catalog = catalog
        #: resource URI -> server, from the last resources/list of each server
        self.resource_owner: dict[str, str] = {}

    def _upstream(self, server: str) -> Upstream:
        upstream = self.upstreams.get(server)
        if upstream is None:
            raise UnknownName(f"no MCP server named {server!r}")
        return upstream

    async def sync(self, upstream: Upstream) -> None:
        """Re-list one server's tools (start, reconnect, list_changed, and every downstream tools/list)."""
        try:
            await asyncio.wait_for(self.catalog.sync(upstream), LIST_TIMEOUT_S)
        except Exception as exc:
            log.warning("mcp: tools of %s not listed: %s", upstream.name, exc)

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

        async def call(client: Any) -> Any:
            return await client.call_tool(entry.name, arguments, progress_callback=progress)

        result = _dump(await upstream.request(call))
        checked, verdict = check_result(result, policy.results, policy.secrets)
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
        result = _dump(await upstream.request(lambda c: c.get_prompt(prompt, arguments)))
        messages = [m.get("content", {}) for m in result.get("messages", [])]
        _, verdict = check_result({"content": messages}, caller.policy.results, caller.policy.secrets)
        if verdict.categories:
            req.verdicts["result"] = verdict
        if verdict.action in ("block", "redact"):
            checked, _ = check_result({"content": messages}, "redact", "redact")
            for m, content in zip(result.get("messages", []), checked["content"], strict=True):
                m["content"] = content
        return result

    # resources ------------------------------------------------------------------------------------
    async def list_resources(self, caller: Caller) -> list[dict[str, Any]]:
        async def one(u: Upstream) -> list[dict[str, Any]]:
            result = await u.request(lambda c: c.list_resources())
            out = []
            for r in result.resources:
                item = _dump(r)
                self.resource_owner[str(item["uri"])] = u.name
                out.append({**item, "name": f"{u.name}{SEP}{item.get('name', '')}"})
            return out

        return [r for r in await self._each(one) if caller.may_use(f"{self.resource_owner[r['uri']]}{SEP}{r['uri']}")]

    async def list_resource_templates(self, caller: Caller) -> list[dict[str, Any]]:
        async def one(u: Upstream) -> list[dict[str, Any]]:
            result = await u.request(lambda c: c.list_resource_templates())
            return [
                {**_dump(t), "name": f"{u.name}{SEP}{t.name}", "_server": u.name} for t in result.resource_templates
            ]

        templates = [t for t in await self._each(one) if caller.may_use(f"{t['_server']}{SEP}*")]
        return [{k: v for k, v in t.items() if k != "_server"} for t in templates]

    def _owner(self, uri: str) -> str:
        owner = self.resource_owner.get(uri)
        if owner is not None:
            return owner
        server, sep, _ = uri.partition(SEP)
        if sep and server in self.upstreams and "://" not in server:
            return server
        raise UnknownName(f"unknown resource {uri!r}; resources/list shows the resources you may read")

    async def read_resource(self, caller: Caller, req: McpRequest, uri: str) -> dict[str, Any]:
        server = self._owner(uri)
        caller.check(f"{server}{SEP}{uri}", "resource")
        req.server = server
        result = _dump(await self._upstream(server).request(lambda c: c.read_resource(uri)))
        contents = result.get("contents", [])
        checked, verdict = check_result({"content": contents}, caller.policy.results, caller.policy.secrets)
        if verdict.categories:
            req.verdicts["result"] = verdict
        if verdict.action == "block":
            return {
                "contents": [
                    {"uri": uri, "mimeType": "text/plain", "text": blocked_result(verdict)["content"][0]["text"]}
                ]
            }
        result["contents"] = checked["content"]
        return result
