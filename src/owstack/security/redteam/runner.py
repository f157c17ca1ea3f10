"""Send each probe's attempts to an OpenAI-compatible endpoint (the gateway) and count hits.

A 2xx response is scored by the probe's detector; a 4xx whose code is a refusal (guard, residency,
permissions) is `blocked`; anything else is an `error` (neither hit nor pass). Rich shows a progress bar
with an ETA on a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from owstack.security.redteam.probes import Attempt, Probe

_REFUSALS = ("guard_blocked", "residency", "forbidden", "permission", "not_allowed", "jurisdiction")


@dataclass
class ProbeResult:
    name: str
    description: str
    attempts: int = 0
    hits: int = 0
    blocked: int = 0
    errors: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return self.attempts - self.errors


def _outcome(response: httpx.Response, attempt: Attempt) -> tuple[str, str]:
    if response.status_code < 300:
        body = response.json()
        choice = (body.get("choices") or [{}])[0].get("message") or {}
        text = str(choice.get("content") or "") + " ".join(
            str((c.get("function") or {}).get("arguments", "")) for c in choice.get("tool_calls") or []
        )
        headers = {k.lower(): v for k, v in response.headers.items()}
        return ("hit" if attempt.detect(text, headers) else "pass"), text[:200]
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = str(error.get("code") or error.get("type") or "")
    if 400 <= response.status_code < 500 and any(r in code.lower() for r in _REFUSALS):
        return "blocked", code
    if response.status_code == 403:
        return "blocked", code or "403"
    return "error", f"{response.status_code} {code}"


def run(
    probes: list[Probe],
    *,
    base_url: str,
    model: str,
    api_key: str | None = None,
    generations: int = 1,
    max_tokens: int = 64,
    timeout: float = 120.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[ProbeResult]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    total = sum(len(p.attempts) for p in probes) * generations
    done = 0
    results = []
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, trust_env=False) as client:
        for probe in probes:
            result = ProbeResult(probe.name, probe.description)
            for attempt in probe.attempts:
                for _ in range(generations):
                    body: dict[str, Any] = {
                        "model": attempt.model or model,
                        "messages": attempt.messages,
                        "max_tokens": max_tokens,
                        "temperature": 0.7,
                        **attempt.params,
                    }
                    try:
                        outcome, shown = _outcome(client.post("/chat/completions", json=body), attempt)
                    except httpx.HTTPError as exc:
                        outcome, shown = "error", type(exc).__name__
                    result.attempts += 1
                    result.hits += outcome == "hit"
                    result.blocked += outcome == "blocked"
                    result.errors += outcome == "error"
                    if outcome == "hit" and len(result.examples) < 3:
                        result.examples.append(shown)
                    done += 1
                    if progress is not None:
                        progress(done, total)
            results.append(result)
    return results
