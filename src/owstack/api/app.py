"""The ASGI entry point for uvicorn (`owstack.api.app:create_app`, a factory): the config path and listen
host travel in environment variables so that every worker process builds the same gateway.

What uvicorn runs is `Served`, the current `Gateway` plus the process's operations:

    SIGHUP    reload: the config file is read and a new gateway assembled and started beside the running
              one; new requests go to it, requests in flight finish on the old one, which is closed once
              they have (at most `server.shutdown_grace_s` later). An invalid file, or a gateway that
              does not start, is rejected with one error line and the running gateway keeps serving.
    SIGTERM   drain: /readyz answers 503 at once, the listener stays open `server.drain_delay_s` (so a
              load balancer stops sending first), then uvicorn stops accepting and gives requests in
              flight, streams included, `server.shutdown_grace_s` to finish. Those still running then are
              cut by owstack (before uvicorn's own timeout): a 503 `shutdown` in the API's shape (a stream's
              error event; on `/mcp` the JSON-RPC error -32068), recorded as cut. The ledger and audit log
              are flushed when the gateway closes, after those records. A second SIGTERM cuts at once.

With several workers (`--workers N`), SIGHUP goes to uvicorn's supervisor, which replaces each worker by
a new one (started, and ready, before the old one is stopped): the same reload, one process at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from owstack.api.gateway import Gateway
from owstack.api.http import Receive, Scope, Send, send_json
from owstack.api.probes import ProbeServer
from owstack.assembly import assemble
from owstack.config.load import Config, load
from owstack.config.validate import validate
from owstack.errors import ConfigError
from owstack.logs import setup_logging

CONFIG_ENV = "OWSTACK_CONFIG"
HOST_ENV = "OWSTACK_HOST"
PORT_ENV = "OWSTACK_PORT"
#: with several workers, where they share their Prometheus numbers (a fresh directory per start)
METRICS_DIR_ENV = "OWSTACK_METRICS_DIR"
LOG_LEVEL_ENV = "OWSTACK_LOG_LEVEL"
#: `owstack serve --probe-port`, over `server.probe_port`
PROBE_PORT_ENV = "OWSTACK_PROBE_PORT"
#: the number of worker processes (several: they all bind the probe port, with SO_REUSEPORT)
WORKERS_ENV = "OWSTACK_WORKERS"

log = logging.getLogger("owstack")
_DRAINING = b'{"status":"not ready","draining":true}'
#: how long a retired configuration waits for the requests it cut to record themselves before it closes
CUT_WAIT_S = 10.0


def read_config() -> Config:
    path = os.environ.get(CONFIG_ENV) or None
    metrics_dir = os.environ.get(METRICS_DIR_ENV)
    probe_port = os.environ.get(PROBE_PORT_ENV)
    overrides: dict[str, Any] = {}
    if metrics_dir:
        overrides["metering"] = {"metrics_dir": metrics_dir}
    if probe_port:
        overrides["server"] = {"probe_port": int(probe_port)}
    return load(path, overrides=overrides or None)


def build(config: Config | None = None) -> Gateway:
    """The gateway for the config file as it is now: checked as `owstack serve` and `config check` check
    it (config/validate.py), then assembled."""
    config = read_config() if config is None else config
    host = os.environ.get(HOST_ENV, "127.0.0.1")
    port = int(os.environ[PORT_ENV]) if os.environ.get(PORT_ENV) else None
    validate(config, host=host, port=port)
    return assemble(config, host=host)


def create_app() -> Served:
    config = read_config()
    setup_logging(os.environ.get(LOG_LEVEL_ENV) or config.file.server.log_level)
    return Served(build(config), build)


class Live:
    """A gateway and the requests it is serving (a retired one closes when they are done)."""

    __slots__ = ("cut", "done", "gateway", "inflight", "retired")

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        #: the tasks of the requests in flight (a retired gateway cuts those still running after the grace)
        self.inflight: set[asyncio.Task[Any]] = set()
        self.retired = False
        #: its requests were cut (once: a second cancel would interrupt the records of the first)
        self.cut = False
        self.done = asyncio.Event()


class Served:
    def __init__(self, gateway: Gateway, rebuild: Callable[[], Gateway]) -> None:
        self.live = Live(gateway)
        self.rebuild = rebuild
        self.draining = False
        self.reloads = 0
        self._retiring: set[asyncio.Task[None]] = set()
        self._reloading: asyncio.Task[bool] | None = None
        self._probes: ProbeServer | None = None

    @property
    def gateway(self) -> Gateway:
        return self.live.gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.draining and scope["path"] == "/readyz":
                await send_json(send, 503, _DRAINING, [])
                return
            live = self.live
            task = asyncio.current_task()
            assert task is not None
            live.inflight.add(task)
            try:
                await live.gateway(scope, receive, send)
            finally:
                live.inflight.discard(task)
                if live.retired and not live.inflight:
                    live.done.set()
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.gateway.startup()
                except Exception as exc:
                    log.error("start-up failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                try:
                    await self._start_probes()
                except OSError as exc:  # the port is taken, or the address is not this machine's
                    log.error("start-up failed: the probe port cannot be opened: %s", exc)
                    await self.gateway.shutdown()
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self._install_signals()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start_probes(self) -> None:
        """The operations listener, if `server.probe_port` is set (api/probes.py): after the gateway has
        started, as the main listener is bound; closed at exit, after it (/readyz there says 503 meanwhile)."""
        server = self.gateway.config.file.server
        if server.probe_port is None:
            return
        self._probes = ProbeServer(
            self,
            host=server.probe_host or os.environ.get(HOST_ENV) or server.host,
            port=server.probe_port,
            header_timeout_s=server.limits.header_timeout_s,
            reuse_port=int(os.environ.get(WORKERS_ENV) or server.workers) > 1,
        )
        await self._probes.start()

    async def close(self) -> None:
        """Process exit: uvicorn has let the requests finish; close every gateway still open."""
        if self._probes is not None:
            await self._probes.close()
        if self._reloading is not None:
            self._reloading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reloading
        for task in list(self._retiring):
            with contextlib.suppress(Exception):
                await task
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
        live = self.live
        live.retired = True
        if live.inflight:  # cut (by owstack at the grace's end, or by uvicorn): let them record it first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.done.wait(), CUT_WAIT_S)
        await self.gateway.shutdown()

    # -- reload -----------------------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Swap in a gateway built from the config file as it is now; False (logged) if it was rejected."""
        try:
            new = await asyncio.to_thread(self.rebuild)
        except ConfigError as exc:
            log.error("reload rejected, still serving the previous configuration: %s", exc)
            return False
        except Exception as exc:
            log.error("reload rejected, still serving the previous configuration: %s: %s", type(exc).__name__, exc)
            return False
        try:
            await new.startup()
        except Exception as exc:
            log.error("reload rejected: the new configuration did not start (%s); still serving the previous one", exc)
            with contextlib.suppress(Exception):
                await new.shutdown()
            return False
        old, self.live = self.live, Live(new)
        old.retired = True
        if not old.inflight:
            old.done.set()
        self.reloads += 1
        log.warning("configuration reloaded; %d request(s) in flight finish on the previous one", len(old.inflight))
        task = asyncio.get_running_loop().create_task(self._retire(old), name="owstack-retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return True

    async def _retire(self, old: Live) -> None:
        grace = old.gateway.config.file.server.shutdown_grace_s
        _grace_ends(old.gateway, asyncio.get_running_loop().time() + grace)  # its background responses too
        try:
            await asyncio.wait_for(old.done.wait(), grace)
        except TimeoutError:
            # As at SIGTERM: those still running are cut while the previous configuration's ledger and audit
            # log are still open to record them.
            _cut(old, "of the previous configuration ")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(old.done.wait(), CUT_WAIT_S)
        await old.gateway.shutdown()

    def _reload_soon(self) -> None:
        if self._reloading is not None and not self._reloading.done():
            log.warning("SIGHUP: a reload is already under way")
            return
        log.info("SIGHUP: reloading the configuration")
        self._reloading = asyncio.get_running_loop().create_task(self.reload(), name="owstack-reload")

    # -- signals ----------------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        """SIGHUP reloads; SIGTERM drains, then hands over to the server's own handler (uvicorn's, which
        stops accepting and lets requests finish). Only from the main thread, where signals arrive."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        signal.signal(signal.SIGHUP, lambda sig, frame: loop.call_soon_threadsafe(self._reload_soon))
        server_handler = signal.getsignal(signal.SIGTERM)
        if callable(server_handler):
            signal.signal(signal.SIGTERM, self._on_term(loop, server_handler))

    def _on_term(self, loop: asyncio.AbstractEventLoop, server_handler: Callable[..., Any]) -> Any:
        def cut() -> None:
            _cut(self.live, "")

        def handle(sig: int, frame: FrameType | None) -> None:
            if self.draining:  # asked twice: stop waiting
                gateway = self.gateway
                loop.call_soon_threadsafe(lambda: _grace_ends(gateway, loop.time()))
                loop.call_soon_threadsafe(cut)
                server_handler(sig, frame)
                return
            self.draining = True
            server = self.gateway.config.file.server
            delay = server.drain_delay_s
            log.warning("SIGTERM: /readyz now answers 503; the listener closes in %.1f s", delay)
            loop.call_soon_threadsafe(loop.call_later, delay, server_handler, sig, frame)
            # Background responses get the grace requests in flight get, ending when theirs does (uvicorn's
            # `timeout_graceful_shutdown` starts when the listener closes), not a grace of their own after it.
            ends = delay + server.shutdown_grace_s
            gateway = self.gateway
            loop.call_soon_threadsafe(lambda: _grace_ends(gateway, loop.time() + ends))
            # The requests' grace ends then too: owstack cuts them itself, at least 0.2 s before uvicorn's own
            # timeout would (it starts a tick after the listener closes, after a 0.1 s pause), so that every
            # part (the MCP edge's handlers too) knows a cut from a client's cancel.
            loop.call_soon_threadsafe(loop.call_later, ends, cut)

        return handle


def _cut(live: Live, which: str) -> None:
    """The end of a grace: the requests still running are cut, each answering 503 `shutdown` in its API's shape
    (a stream: its error event) and recorded as cut (api/handler.py, mcp/lean.py, mcp/handling.py)."""
    if live.cut:
        return
    live.cut = True
    live.gateway.cut()
    if live.inflight:
        log.warning("%d request(s) %scut: still running at the end of the shutdown grace", len(live.inflight), which)
    for task in list(live.inflight):
        task.cancel()


def _grace_ends(gateway: Gateway, deadline: float) -> None:
    """Tell the gateway's background responses when the shutdown grace ends (the loop's clock)."""
    background = getattr(gateway, "background", None)
    if background is not None:
        background.deadline = deadline
