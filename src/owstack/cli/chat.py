"""`owstack chat`: a small client for a running gateway (streams the answer as it comes)."""

from __future__ import annotations

import json
import sys

import typer

from owstack.cli.common import fail


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
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, max=2.0),
    reasoning: str | None = typer.Option(None, "--reasoning", help="Reasoning policy: off, budget:N, concise."),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Print tokens as they arrive."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the layer, backend and usage on stderr."),
) -> None:
    """Send one chat message to a running owstack gateway and print the answer."""
    import httpx

    if prompt == "-":
        prompt = sys.stdin.read()
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    body: dict[str, object] = {"model": model, "messages": messages, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
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
                    _print_stream(resp, verbose)
            else:
                resp = client.post(endpoint, json=body, headers=headers)
                _check(resp)
                data = resp.json()
                message = data["choices"][0]["message"]
                if verbose and message.get("reasoning_content"):
                    typer.secho(message["reasoning_content"], fg="bright_black", err=True)
                typer.echo(message.get("content") or json.dumps(message.get("tool_calls"), indent=2))
                if verbose:
                    _describe(resp.headers, data.get("usage"))
    except httpx.ConnectError:
        fail(f"cannot reach the gateway at {url}; start it with `owstack serve`", code=1)
    except httpx.HTTPError as exc:
        fail(f"request failed: {exc}", code=1)


def _check(resp: object) -> None:
    import httpx

    assert isinstance(resp, httpx.Response)
    if resp.status_code >= 400:
        resp.read()
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:300]
        fail(f"HTTP {resp.status_code}: {message}", code=1)


def _print_stream(resp: object, verbose: bool) -> None:
    import httpx

    assert isinstance(resp, httpx.Response)
    usage = None
    for line in resp.iter_lines():
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if "error" in chunk:
            typer.echo("")
            fail(f"stream ended with an error: {chunk['error'].get('message')}", code=1)
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if verbose and delta.get("reasoning_content"):
                typer.secho(delta["reasoning_content"], fg="bright_black", nl=False, err=True)
            if delta.get("content"):
                typer.echo(delta["content"], nl=False)
    typer.echo("")
    if verbose:
        _describe(resp.headers, usage)


def _describe(headers: object, usage: object) -> None:
    get = getattr(headers, "get", lambda _k: None)
    typer.secho(
        f"[layer {get('x-owstack-layer')}, backend {get('x-owstack-backend')}, "
        f"request {get('x-request-id')}, usage {usage}]",
        fg="cyan",
        err=True,
    )
