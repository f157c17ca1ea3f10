"""The gateway's route table: exact paths in a dict (the hot path is one lookup), templated ones such as
`/v1/responses/{id}` in a short list matched segment by segment (a last `{name*}` takes the rest of the path,
slashes included: model ids such as `nvidia/Nemotron`). Path parameters go to `scope["path_params"]`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from owstack.api.http import Receive, Scope, Send

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway
    from owstack.pipeline.context import RequestContext

Handler = Callable[["Gateway", "RequestContext", Scope, Receive, Send], Awaitable[None]]
Methods = dict[str, Handler]


class Routes:
    def __init__(self) -> None:
        self._exact: dict[str, Methods] = {}
        self._templates: list[tuple[tuple[str, ...], Methods]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        if "{" not in path:
            self._exact.setdefault(path, {})[method] = handler
            return
        parts = tuple(path.strip("/").split("/"))
        for known, methods in self._templates:
            if known == parts:
                methods[method] = handler
                return
        self._templates.append((parts, {method: handler}))

    def find(self, path: str) -> tuple[Methods | None, dict[str, str]]:
        """The handlers by method for `path` (None: no such path) and its path parameters."""
        methods = self._exact.get(path)
        if methods is not None:
            return methods, {}
        parts = path.strip("/").split("/")
        for template, handlers in self._templates:
            greedy = template[-1].endswith("*}")
            if len(template) != len(parts) and not (greedy and len(parts) >= len(template)):
                continue
            got_parts = [*parts[: len(template) - 1], "/".join(parts[len(template) - 1 :])] if greedy else parts
            params: dict[str, str] = {}
            for want, got in zip(template, got_parts, strict=True):
                if want.startswith("{"):
                    if not got:
                        break
                    params[want[1:-1].rstrip("*")] = got
                elif want != got:
                    break
            else:
                return handlers, params
        return None, {}
