"""`owstack chat`: a small client for a running gateway.

On a terminal the answer streams in with a live status line under it (spinner, layer and backend, tokens,
speed); piped, it prints the bare text. The default `--max-tokens` keeps a first try short: the embedded
model (SmolLM2-135M) is a smoke test, and 256 tokens take a few seconds on a small CPU rather than minutes.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import typer

from owstack.cli.common import fail, header_value, http_url

DEFAULT_MAX_TOKENS = 256


def register(app: typer.Typer) -> None:
    app.command()(chat)


def chat(
    prompt: str = typer.Argument(..., help="The user message; '-' reads it from standard input."),
    model: str = typer.Option("auto", "--model", "-m", help="A layer (coding, multimodal, edge), auto, or a model id."),
    url: str = typer.Option(
        "http://127.0.0.1:8000/v1", "--url", envvar="OWSTACK_URL", help="The gateway's /v1 base URL."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="OWSTACK_API_KEY", help="API key (or OWSTACK_API_KEY)."
    ),
    system: str | None = typer.Option(None, "--system", help="A system message."),
    max_tokens: int = typer.Option(
        DEFAULT_MAX_TOKENS, "--max-tokens", min=1, max=1_000_000, help="Longest answer, in tokens."
    ),
    temperature: float | None = typer.Option(
        None, "--temperature", min=0.0, max=2.0, help="Sampling temperature. [default: the backend's]"
    ),
    reasoning: str | None = typer.Option(
        None, "--reasoning", help="Reasoning policy: off, budget:N, concise. [default: the layer's]"
    ),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Print tokens as they arrive."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show reasoning, layer, backend and usage on stderr."),
) -> None:
    """Send one chat message to a running owstack gateway and print the answer."""
    import httpx

    http_url(url, "--url")
    if api_key:
        header_value(api_key, "--api-key")
    if prompt == "-":
        prompt = sys.stdin.read()
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    body: dict[str, object] = {"model": model, "messages": messages, "stream": stream, "max_tokens": max_tokens}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if temperature is not None:
        body["temperature"] = temperature
    if reasoning is not None:
        body["reasoning_policy"] = reasoning
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    endpoint = url.rstrip("/") + "/chat/completions"
    try:
        with httpx.Client(timeout=httpx.Timeout(10.0, read=600.0)) as client:
            if stream:
                with client.stream("POST", endpoint, json=body, headers=headers) as resp:
                    _check(resp)
                    finish, usage = _print_stream(resp, verbose)
                    headers_seen = resp.headers
            else:
                finish, usage, headers_seen = _complete(client, endpoint, body, headers, verbose)
    except httpx.ConnectError:
        fail(f"cannot reach the gateway at {url}; start it with `owstack serve`", code=1)
    except httpx.HTTPError as exc:
        fail(f"request failed: {exc}", code=1)
    if finish == "length":
        typer.secho(f"[stopped at --max-tokens {max_tokens}; raise it for a longer answer]", fg="yellow", err=True)
    if verbose:
        _describe(headers_seen, usage)


def _complete(client: Any, endpoint: str, body: dict[str, object], headers: dict[str, str], verbose: bool) -> Any:
    from owstack.cli.progress import status

    with status(f"waiting for {body['model']}"):
        resp = client.post(endpoint, json=body, headers=headers)
    _check(resp)
    data = resp.json()
    choice = data["choices"][0]
    message = choice["message"]
    if verbose and message.get("reasoning_content"):
        typer.secho(message["reasoning_content"], fg="bright_black", err=True)
    typer.echo(message.get("content") or json.dumps(message.get("tool_calls"), indent=2))
    return choice.get("finish_reason"), data.get("usage"), resp.headers


def _check(resp: Any) -> None:
    if resp.status_code >= 400:
        resp.read()
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:300]
        fail(f"HTTP {resp.status_code}: {message}", code=1)


def _print_stream(resp: Any, verbose: bool) -> tuple[str | None, Any]:
    """Write the streamed answer (and, with -v, the reasoning dimmed); return (finish reason, usage)."""
    from owstack.cli.livetext import LiveText

    where = f"{resp.headers.get('x-owstack-layer') or 'gateway'} / {resp.headers.get('x-owstack-backend') or '?'}"
    usage, finish, pieces, started = None, None, 0, time.perf_counter()
    first: float | None = None
    with LiveText() as out:
        out.status(f"{where}: waiting for the first token")
        for line in resp.iter_lines():
            if not line.startswith("data: "):
                continue
            if line[6:] == "[DONE]":
                break
            chunk = json.loads(line[6:])
            if "error" in chunk:
                out.write("\n")
                fail(f"stream ended with an error: {chunk['error'].get('message')}", code=1)
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                finish = choice.get("finish_reason") or finish
                text = delta.get("content") or (delta.get("reasoning_content") if verbose else None)
                if not text:
                    continue
                if delta.get("content"):
                    out.write(text)
                elif out.live_mode:
                    out.write(text, style="dim")
                else:  # piped: the answer alone on stdout
                    typer.secho(text, fg="bright_black", nl=False, err=True)
                pieces += 1
                first = first or time.perf_counter()
                out.status(_speed(where, pieces, first, started))
        if not out.wrote_newline_last:
            out.write("\n")
    return finish, usage


def _speed(where: str, pieces: int, first: float, started: float) -> str:
    now = time.perf_counter()
    rate = (pieces - 1) / (now - first) if now > first and pieces > 1 else 0.0
    return f"{where}: {pieces} tokens, {rate:.0f} tok/s, {now - started:.1f} s (Ctrl-C stops)"


def _describe(headers: Any, usage: object) -> None:
    typer.secho(
        f"[layer {headers.get('x-owstack-layer')}, backend {headers.get('x-owstack-backend')}, "
        f"request {headers.get('x-request-id')}, usage {usage}]",
        fg="cyan",
        err=True,
    )
