"""Closed-loop load on a running gateway for fault injection: every request carries an id of its own, and the
driver remembers which were acknowledged (a complete 200 response) and how the others ended.

    with Load(gw.base_url, concurrency=16, prefix="k9") as load:
        load.wait_for(300)            # at least 300 acknowledged
        ...                           # inject the fault while the load runs
    load.acknowledged                 # ids of complete 200 responses
    load.outcomes                     # {"200": n, "503": n, "error": n, ...}
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx


class Load:
    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int = 16,
        prefix: str = "load",
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> None:
        self.base_url = base_url
        self.concurrency = concurrency
        self.prefix = prefix
        self.body = body or {"model": "edge", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        self.headers = headers or {}
        self.acknowledged: list[str] = []
        self.outcomes: Counter[str] = Counter()
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        for n in range(self.concurrency):
            t = threading.Thread(target=self._run, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def wait_for(self, acknowledged: int, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < acknowledged and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.acknowledged) >= acknowledged

    def _run(self, worker: int) -> None:
        n = 0
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            while not self._stop.is_set():
                n += 1
                request_id = f"{self.prefix}-{worker:03d}-{n:07d}"
                with self._lock:
                    self.sent += 1
                outcome = self._one(http, request_id)
                with self._lock:
                    self.outcomes[outcome] += 1
                    if outcome == "200":
                        self.acknowledged.append(request_id)
                if outcome == "error":
                    time.sleep(0.05)  # the gateway is gone: do not spin

    def _one(self, http: httpx.Client, request_id: str) -> str:
        headers = {**self.headers, "x-request-id": request_id}
        try:
            if self.body.get("stream"):
                with http.stream("POST", "/chat/completions", json=self.body, headers=headers) as r:
                    text = "".join(r.iter_text())
                    ok = r.status_code == 200 and text.rstrip().endswith("data: [DONE]") and '"error"' not in text
                    return "200" if ok else ("stream_error" if r.status_code == 200 else str(r.status_code))
            r = http.post("/chat/completions", json=self.body, headers=headers)
            return str(r.status_code)
        except httpx.HTTPError:
            return "error"
