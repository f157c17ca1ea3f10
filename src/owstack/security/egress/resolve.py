"""Name resolution for egress checks. A resolver answers every A and AAAA address of a name.

`SystemResolver` uses the operating system (getaddrinfo). `StaticResolver` answers from a table first (the
CLI's `--resolve NAME=ADDR`, tests) and falls back to another resolver, or refuses unknown names.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Mapping
from typing import Protocol


class ResolveError(OSError):
    """A name that cannot be resolved; the message says why."""


class Resolver(Protocol):
    async def resolve(self, host: str) -> list[str]: ...

    def resolve_sync(self, host: str) -> list[str]: ...


def _unique(infos: Iterable[tuple[object, ...]]) -> list[str]:
    seen: dict[str, None] = {}
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


class SystemResolver:
    """getaddrinfo, for every address family: all A and AAAA answers, in the system's order."""

    async def resolve(self, host: str) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ResolveError(f"cannot resolve {host}: {exc}") from None
        return _unique(infos)

    def resolve_sync(self, host: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ResolveError(f"cannot resolve {host}: {exc}") from None
        return _unique(infos)


class StaticResolver:
    """Answers from `table` (name -> addresses); other names go to `fallback`, or fail when it is None."""

    def __init__(self, table: Mapping[str, Iterable[str]], fallback: Resolver | None = None) -> None:
        self._table = {name.lower().rstrip("."): list(addrs) for name, addrs in table.items()}
        self._fallback = fallback

    def _lookup(self, host: str) -> list[str] | None:
        return self._table.get(host.lower().rstrip("."))

    async def resolve(self, host: str) -> list[str]:
        found = self._lookup(host)
        if found is not None:
            return list(found)
        if self._fallback is None:
            raise ResolveError(f"cannot resolve {host}: not in the static table")
        return await self._fallback.resolve(host)

    def resolve_sync(self, host: str) -> list[str]:
        found = self._lookup(host)
        if found is not None:
            return list(found)
        if self._fallback is None:
            raise ResolveError(f"cannot resolve {host}: not in the static table")
        return self._fallback.resolve_sync(host)
