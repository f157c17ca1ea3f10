"""A TCP proxy for fault injection in front of PostgreSQL, Redis or an upstream: asyncio on a thread of its own.

    proxy = TcpProxy(("127.0.0.1", 5432)).start()     # listens on 127.0.0.1:proxy.port
    proxy.pause()     # a partition: connections stay open, nothing is forwarded (calls hang until a timeout)
    proxy.cut()       # an outage: every connection is reset, new ones are refused (the port is closed)
    proxy.resume()    # forwarding again (from pause or cut, on the same port)
    proxy.close()

Unlike a firewall rule it needs no privileges, and unlike killing the server it leaves the server's state
alone, so a test can take a store away and give it back mid-load.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.mode = "up"
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        self._call(self._set_flowing(True))
        return self

    def pause(self) -> None:
        """Keep every connection (and accept new ones) but forward nothing: what a network partition does."""
        self.mode = "paused"
        self._call(self._set_flowing(False))

    def cut(self) -> None:
        """Reset every connection and stop listening: what a server that went away does."""
        self.mode = "down"
        self._call(self._cut())

    def resume(self) -> None:
        if self.mode == "down":
            self._call(self._listen())
        self.mode = "up"
        self._call(self._set_flowing(True))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._call(self._cut())
            self._call(self._cancel_all())
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _cancel_all(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # the proxy's loop ---------------------------------------------------------------------------------
    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _set_flowing(self, on: bool) -> None:
        if on:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                sock = transport.get_extra_info("socket")
                if sock is not None:  # RST rather than FIN: the peer sees a reset, as from a crashed host
                    import socket
                    import struct

                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
        self._writers.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
            while data := await reader.read(65536):
                await self._flowing.wait()  # paused: hold the bytes (the peer sees silence)
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.write_eof()
