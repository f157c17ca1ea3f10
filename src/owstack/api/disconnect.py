"""Noticing a client that goes away, so that the work done for it (upstream calls, generation) stops."""

from __future__ import annotations

import asyncio
from typing import Any

from owstack.api.http import Receive


class DisconnectWatch:
    """Cancels the request's task when its client disconnects. Start it once the body has been read (from then
    on `receive` only reports a disconnect); stop it before sending the response's last message."""

    __slots__ = ("_future", "_receive", "_task", "fired")

    def __init__(self, receive: Receive) -> None:
        self.fired = False
        self._task = asyncio.current_task()
        self._future: asyncio.Future[Any] | None = None
        self._receive = receive

    def start(self) -> None:
        if self._future is None:
            self._future = asyncio.ensure_future(self._receive())
            self._future.add_done_callback(self._on_message)

    def _on_message(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None or self._task is None:
            return
        if future.result().get("type") == "http.disconnect" and not self.fired:
            self.fired = True
            self._task.cancel()

    def stop(self) -> None:
        future = self._future
        self._future = None
        self._task = None
        if future is not None and not future.done():
            future.cancel()


def uncancel() -> None:
    """Undo the cancellation `DisconnectWatch` caused, so the after-hooks can still await."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
