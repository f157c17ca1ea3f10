"""The egress forward proxy: HTTP (absolute-form requests) and CONNECT, under the egress policy.

For processes owstack does not control, or controls only by their environment: the stdio MCP servers it
starts get HTTP_PROXY/HTTPS_PROXY pointing here, and agents (Claude Code, Codex) can be pointed here too.
Each connection's client is identified by its proxy credentials (`owstack.mcp.proxy_auth`: a tenant's
owstack key, or the credentials of a stdio server owstack started) and gets that identity's policy.
Every connection is checked with `check_url` (scheme, allow/deny hosts, every resolved address: private,
loopback, link-local and cloud metadata addresses refused unless allowed), connected to the checked
address only (no second DNS answer), logged, and cut when it carries more than `max_bytes` or lasts longer
than `timeout_s`. A plain-HTTP response is counted after decompression (gzip, deflate; chunked bodies
de-chunked for counting), so a small compressed bomb is cut at the same limit as a large body. A CONNECT
tunnel is opaque (TLS): its bytes are counted as they are.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from owstack.mcp.proxy_auth import Identity, ProxyAuth, ProxyAuthRequired
from owstack.security.egress import EgressPolicy, Resolver

if TYPE_CHECKING:
    from owstack.config.load import Config
    from owstack.tenancy.keys import KeyStore

log = logging.getLogger("owstack.egress")
Connector = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
HEAD_LIMIT = 64 * 1024
CHUNK = 64 * 1024
_HOP = frozenset({b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive", b"te", b"upgrade"})


class Cut(Exception):
    """The connection went over a limit; the message says which."""


async def _open(address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(address, port)


class _Counter:
    """Counts a plain-HTTP response body as the client will see it: de-chunked and decompressed."""

    def __init__(self, limit: int, encoding: bytes, chunked: bool) -> None:
        self.limit, self.total = limit, 0
        self.inflate = zlib.decompressobj(47) if encoding in (b"gzip", b"x-gzip", b"deflate") else None
        self.chunked, self._buf, self._left = chunked, b"", 0

    def feed(self, data: bytes) -> None:
        for part in self._dechunk(data) if self.chunked else (data,):
            self._count(part)

    def _count(self, data: bytes) -> None:
        if self.inflate is None:
            self.total += len(data)
        else:
            while data:
                out = self.inflate.decompress(data, self.limit - self.total + 1)
                self.total += len(out)
                data = self.inflate.unconsumed_tail
                if self.total > self.limit or not out:
                    break
        if self.total > self.limit:
            raise Cut(f"response over max_bytes {self.limit} (after decompression)")

    def _dechunk(self, data: bytes) -> list[bytes]:
        self._buf += data
        parts: list[bytes] = []
        while self._buf:
            if self._left:
                take = self._buf[: self._left]
                parts.append(take)
                self._left -= len(take)
                self._buf = self._buf[len(take) :]
                continue
            line, sep, rest = self._buf.partition(b"\r\n")
            if not sep:
                break
            size = line.split(b";")[0].strip()
            self._buf = rest
            if not size:
                continue
            self._left = int(size, 16) if all(c in b"0123456789abcdefABCDEF" for c in size) else 0
            if self._left == 0:
                self._buf = b""
                break
        return parts


class EgressProxy:
    """`await proxy.start()` listens; `aclose()` stops. Lifecycle like the gateway's other hooks."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        host: str = "127.0.0.1",
        port: int = 8899,
        max_bytes: int | None = None,
        timeout_s: float | None = None,
        resolver: Resolver | None = None,
        connector: Connector | None = None,
        auth: ProxyAuth | None = None,
    ) -> None:
        self.policy, self.host, self.port = policy, host, port
        self.auth = auth or ProxyAuth(policy, required=False)
        self.max_bytes = max_bytes or policy.max_bytes
        self.timeout_s = timeout_s or policy.timeout_s
        self.resolver = resolver
        self.connector = connector or _open
        self.server: asyncio.Server | None = None
        self.refused = self.passed = self.cut = 0

    @classmethod
    def from_config(cls, config: Config, keystore: KeyStore | None = None, **kwargs: object) -> EgressProxy:
        section = config.file.mcp.proxy
        policy = EgressPolicy.from_section(config.file.security.egress)
        required = section.auth == "required" or (section.auth == "auto" and bool(config.file.tenants))
        auth = ProxyAuth(policy, required=required, keystore=keystore, tenants=frozenset(config.file.tenants),
                         tenant_policies=section.tenants, server_policies=section.servers)  # fmt: skip
        values: dict[str, object] = {"host": section.host, "port": section.port, "max_bytes": section.max_bytes,
                                     "timeout_s": section.timeout_s, "auth": auth, **kwargs}  # fmt: skip
        if config.file.mcp.resolve and "resolver" not in kwargs:
            from owstack.security.egress import StaticResolver, SystemResolver

            values["resolver"] = StaticResolver(config.file.mcp.resolve, SystemResolver())
        return cls(policy, **values)  # type: ignore[arg-type]

    def url_for(self, server: str) -> str:
        """The proxy URL for a stdio server owstack starts, with that server's credentials in it."""
        return f"http://{self.auth.credentials_for(server)}{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    name = "egress-proxy"

    def unavailable(self) -> str | None:
        return None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, self.host, self.port, limit=HEAD_LIMIT)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("egress proxy listening on %s", self.url)

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        started = time.monotonic()
        target, outcome, moved, who = "-", "error", 0, "-"
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            method, uri, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            target = uri
            try:
                identity = await self.auth.identify(_header(head, b"proxy-authorization"))
            except ProxyAuthRequired as exc:
                self.refused += 1
                await _reply(writer, 407, f"owstack egress proxy: {exc}",
                             [("Proxy-Authenticate", 'Basic realm="owstack egress proxy"')])  # fmt: skip
                outcome = f"refused: {exc}"
                return
            who = identity.label
            if method.upper() == "CONNECT":
                outcome, moved = await self._connect(uri, reader, writer, identity)
            else:
                outcome, moved = await self._forward(method, uri, head, reader, writer, identity)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError):
            await _reply(writer, 400, "malformed proxy request")
            outcome = "malformed"
        except Cut as exc:
            self.cut += 1
            outcome = f"cut: {exc}"
        except OSError as exc:
            outcome = f"error: {exc}"
        finally:
            writer.close()
            log.info("egress proxy %s (%s) %s -> %s (%d bytes, %.0f ms)", peer[0] if peer else "-", who, target,
                     outcome, moved, (time.monotonic() - started) * 1000)  # fmt: skip

    async def _check(self, url: str, writer: asyncio.StreamWriter, identity: Identity) -> tuple[str, int] | None:
        decision = await identity.check(url, self.resolver)
        if not decision.allowed or not decision.addresses or decision.port is None:
            self.refused += 1
            await _reply(writer, 403, f"owstack egress policy: {decision.reason}")
            log.warning("egress proxy refused %s for %s: %s", url, identity.label, decision.reason)
            return None
        self.passed += 1
        return decision.addresses[0], decision.port

    async def _connect(
        self, authority: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, identity: Identity
    ) -> tuple[str, int]:
        where = await self._check(f"https://{authority}/", writer, identity)
        if where is None:
            return "refused", 0
        up_reader, up_writer = await asyncio.wait_for(self.connector(*where), self.timeout_s)
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await writer.drain()
        return "tunnel", await self._pipe(reader, writer, up_reader, up_writer, None)

    async def _forward(
        self,
        method: str,
        uri: str,
        head: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        identity: Identity,
    ) -> tuple[str, int]:
        if not uri.lower().startswith("http://"):
            await _reply(writer, 400, "send an absolute http:// URL, or CONNECT for https")
            return "malformed", 0
        where = await self._check(uri, writer, identity)
        if where is None:
            return "refused", 0
        path = "/" + uri.split("/", 3)[3] if uri.count("/") >= 3 else "/"
        lines = head.split(b"\r\n")[1:]
        kept = [ln for ln in lines if ln and ln.split(b":", 1)[0].strip().lower() not in _HOP]
        request = f"{method} {path} HTTP/1.1\r\n".encode() + b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n"
        up_reader, up_writer = await asyncio.wait_for(self.connector(*where), self.timeout_s)
        up_writer.write(request)
        return "forwarded", await self._pipe(reader, writer, up_reader, up_writer, _response_counter(self.max_bytes))

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        counter: Callable[[bytes], None] | None,
    ) -> int:
        moved = [0]

        async def copy(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: Callable[[bytes], None] | None
        ) -> None:
            wrote = False
            while data := await src.read(CHUNK):
                moved[0] += len(data)
                try:
                    if count is not None:
                        count(data)
                    elif moved[0] > self.max_bytes:
                        raise Cut(f"tunnel over max_bytes {self.max_bytes}")
                except Cut as exc:
                    if count is not None and not wrote:  # nothing sent yet: the client gets a clear answer
                        await _reply(dst, 502, f"owstack egress proxy: {exc}")
                    raise
                dst.write(data)
                wrote = True
                await dst.drain()
            if dst.can_write_eof():
                dst.write_eof()

        tasks = [
            asyncio.ensure_future(copy(reader, up_writer, None)),
            asyncio.ensure_future(copy(up_reader, writer, counter)),
        ]
        try:
            async with asyncio.timeout(self.timeout_s):
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    if task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                await asyncio.gather(*tasks)
        except TimeoutError:
            raise Cut(f"connection open longer than timeout_s {self.timeout_s:g}") from None
        finally:
            for task in tasks:
                task.cancel()
            up_writer.close()
        return moved[0]


def _response_counter(limit: int) -> Callable[[bytes], None]:
    """Reads the response head from the stream, then counts its body with `_Counter`."""
    state: dict[str, object] = {"head": b"", "counter": None}

    def feed(data: bytes) -> None:
        counter = state["counter"]
        if isinstance(counter, _Counter):
            counter.feed(data)
            return
        head = bytes(state["head"]) + data  # type: ignore[call-overload]
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > HEAD_LIMIT:
                raise Cut("response head too long")
            state["head"] = head
            return
        headers = {ln.split(b":", 1)[0].strip().lower(): ln.split(b":", 1)[1].strip().lower()
                   for ln in head[:end].split(b"\r\n")[1:] if b":" in ln}  # fmt: skip
        fresh = _Counter(
            limit, headers.get(b"content-encoding", b""), b"chunked" in headers.get(b"transfer-encoding", b"")
        )
        state["counter"] = fresh
        fresh.feed(head[end + 4 :])

    return feed


def _header(head: bytes, name: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip().decode("latin-1")
    return None


async def _reply(
    writer: asyncio.StreamWriter, status: int, message: str, headers: list[tuple[str, str]] | None = None
) -> None:
    reason = {400: "Bad Request", 403: "Forbidden", 407: "Proxy Authentication Required", 502: "Bad Gateway"}
    body = (message + "\n").encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers or ())
    writer.write(f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
                 f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n".encode() + body)  # fmt: skip
    try:
        await writer.drain()
    except OSError:
        pass
