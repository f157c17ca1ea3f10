"""Scans off the event loop: the guard's rules cost milliseconds of CPU per KB, so a long tool result scanned on the
event loop would stop every other request of the process meanwhile. Two worker threads (they share the
interpreter lock with the loop, which therefore slows down, and no longer stops, while a scan runs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

#: a request whose texts to scan are longer than this in all is scanned on a worker thread; shorter ones cost
#: less than the hop (~0.1 ms)
OFF_LOOP_CHARS = 8192

_P = ParamSpec("_P")
_T = TypeVar("_T")
_scanners = ThreadPoolExecutor(max_workers=2, thread_name_prefix="owstack-guard")


async def off_loop(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`fn(*args, **kwargs)` on a scanning thread."""
    return await asyncio.get_running_loop().run_in_executor(_scanners, lambda: fn(*args, **kwargs))
