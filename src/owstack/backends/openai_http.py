"""`openai_http`: any OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp server, TGI, OpenAI)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from owstack.backends import httpclient, toolcalls, wire_check
from owstack.backends.dialects import Dialect, dialect
from owstack.backends.lora import upstream_model
from owstack.backends.sse import DONE, iter_data
from owstack.config.schema import BackendSection
from owstack.errors import InvalidRequest, OwstackError, UpstreamError, UpstreamTimeout
from owstack.types import JSON, ChatRequest, Completion

_MAX_ERROR_TEXT = 300


class OpenAIHTTPBackend:
    def __init__(self, name: str, section: BackendSection, api_key: str | None = None) -> None:
        assert section.url is not None
        self.name = name
        self.engine: str = section.engine
        self.model = section.model
        self.jurisdiction = section.jurisdiction
        self.proprietary = section.proprietary
        self.section = section
        self.dialect: Dialect = dialect(section.engine)
        self.pool = httpclient.Pool(section.url, max_connections=section.max_connections)
        self.timeouts = httpclient.Timeouts(connect=section.timeouts.connect_s, read=section.timeouts.read_s)
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._stream_headers = {**self._headers, "Accept": "text/event-stream"}
        self._path = self.pool.base_path + "/chat/completions"
        self._paths = {
            "chat": self._path,
            "completions": self.pool.base_path + "/completions",
            "embeddings": self.pool.base_path + "/embeddings",
        }
        health = self.dialect.health_path
        models = self.pool.base_path + "/models"
        self._health_paths: tuple[str, ...] = (
            (self.pool.base_path + health[5:],) if health.startswith("base:") else (health, models)
        )
        from owstack.catalog.models import find_card
        from owstack.catalog.toolcalls import card_tool_call_format

        self.card = find_card(section.catalog or section.model)
        #: the model's tool-call markup, read out of the text when the engine leaves it there
        self.markup = card_tool_call_format(self.card) if self.dialect.tool_markup else None

    def _reader(self, request: ChatRequest) -> toolcalls.ToolCallReader | None:
        if self.markup is None or not request.params.get("tools"):
            return None
        offered = {t["function"]["name"]: t["function"].get("parameters") for t in request.params["tools"]}
        return toolcalls.ToolCallReader(self.markup, offered)

    def _shape(self, request: ChatRequest) -> ChatRequest:
        """Apply the request's reasoning policy in this engine's dialect."""
        if request.reasoning is None:
            return request
        from owstack.efficiency.policies import apply, translate

        return apply(translate(request.reasoning, self.engine, self.card), request)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def _post(self, body: JSON, headers: dict[str, str], path: str | None = None) -> httpclient.Response:
        try:
            resp = await self.pool.request("POST", path or self._path, orjson.dumps(body), headers, self.timeouts)
        except BaseException as exc:
            raise _translate(exc, self.name) from None
        if resp.status >= 300:
            raw = b""
            try:
                raw = await resp.read()
            except Exception:
                await resp.aclose()
            raise _status_error(resp.status, raw, self.name)
        return resp

    async def complete(self, request: ChatRequest) -> Completion:
        if request.endpoint != "chat":
            return await self._forward(request)
        request = self._shape(request)
        model = upstream_model(self.engine, self.model, request.adapter)
        resp = await self._post(self.dialect.body(request, model, stream=False), self._headers)
        try:
            raw = await resp.read()
        except BaseException as exc:
            await resp.aclose()
            raise _translate(exc, self.name) from None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"backend {self.name} returned a body that is not a chat completion") from None
        try:
            usage = wire_check.completion(body)
        except ValueError as exc:
            raise UpstreamError(f"backend {self.name} returned a malformed chat completion: {exc}") from None
        finish = None
        for choice in body["choices"]:
            if isinstance(choice, dict):
                self.dialect.normalise_message(choice.get("message"))
                reader = self._reader(request)
                message = choice.get("message")
                found = reader is not None and isinstance(message, dict) and toolcalls.read_message(reader, message)
                if found and choice.get("finish_reason") == "stop":
                    choice["finish_reason"] = "tool_calls"
                finish = finish or choice.get("finish_reason")
        return Completion(body=body, usage=usage, finish_reason=finish)

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        model = upstream_model(self.engine, self.model, request.adapter)
        if request.endpoint == "chat":
            request = self._shape(request)
            body = self.dialect.body(request, model, stream=True)
        else:
            body = {**request.params, "model": model, "stream": True, "stream_options": {"include_usage": True}}
        resp = await self._post(body, self._stream_headers, self._paths[request.endpoint])
        normalise = self.dialect.normalise_message
        finished = False
        reader = self._reader(request) if request.endpoint == "chat" else None
        try:
            async for data in iter_data(resp.iter_bytes()):
                if data == DONE:
                    finished = True
                    break
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise UpstreamError(f"backend {self.name} sent an event that is not JSON") from None
                if not isinstance(chunk, dict):
                    continue
                if "error" in chunk:
                    raise UpstreamError(f"backend {self.name} reported an error mid-stream: {_error_text(chunk)}")
                try:
                    wire_check.chunk(chunk)
                except ValueError as exc:
                    raise UpstreamError(f"backend {self.name} sent a malformed chunk: {exc}") from None
                for choice in chunk.get("choices") or ():
                    if isinstance(choice, dict):
                        normalise(choice.get("delta"))
                        finished = finished or bool(choice.get("finish_reason"))
                if reader is not None:
                    toolcalls.read_chunk(reader, chunk)
                yield chunk
            if not finished:
                # The connection ended with neither `[DONE]` nor a finish reason: the upstream was cut off
                # (a crash, a proxy's timeout). The client must not take the partial answer for a whole one.
                raise UpstreamError(
                    f"backend {self.name} ended the stream without a finish reason or [DONE] (truncated)",
                    code="upstream_truncated",
                )
        except OwstackError:
            raise
        except BaseException as exc:
            raise _translate(exc, self.name) from None
        finally:
            await resp.aclose()

    async def _forward(self, request: ChatRequest) -> Completion:
        """Legacy completions and embeddings: the client's body to the same path upstream, the model replaced."""
        body = {**request.params, "model": upstream_model(self.engine, self.model, request.adapter)}
        resp = await self._post(body, self._headers, self._paths[request.endpoint])
        try:
            raw = await resp.read()
        except BaseException as exc:
            await resp.aclose()
            raise _translate(exc, self.name) from None
        key = "data" if request.endpoint == "embeddings" else "choices"
        try:
            answer = orjson.loads(raw)
            usage = wire_check.forwarded(answer, key)
        except (orjson.JSONDecodeError, ValueError) as exc:
            reason = f": {exc}" if not isinstance(exc, orjson.JSONDecodeError) else ""
            raise UpstreamError(
                f"backend {self.name} returned a body that is not a {request.endpoint} result{reason}"
            ) from None
        finish = next((c.get("finish_reason") for c in answer[key] if c.get("finish_reason")), None)
        return Completion(body=answer, usage=usage, finish_reason=finish)

    async def list_models(self) -> list[str]:
        try:
            resp = await self.pool.request("GET", self.pool.base_path + "/models", b"", self._headers, self.timeouts)
            raw = await resp.read()
            data = orjson.loads(raw).get("data", [])
            return [m["id"] for m in data if isinstance(m, dict) and "id" in m] or [self.model]
        except Exception:
            return [self.model]

    async def health(self, timeout: float = 2.0) -> bool:
        """GET the engine's health path; a server without one (404) is probed at `{base}/models` instead."""
        timeouts = httpclient.Timeouts(connect=timeout, read=timeout)
        for path in self._health_paths:
            try:
                resp = await self.pool.request("GET", path, b"", self._headers, timeouts)
                await resp.read()
            except Exception:
                return False
            if resp.status != 404 or path == self._health_paths[-1]:
                if resp.status == 404:
                    return False
                self._health_paths = (path,)  # remember the one that answers
                return resp.status < 300
        return False


def _translate(exc: BaseException, name: str) -> BaseException:
    if isinstance(exc, OwstackError):
        return exc
    if isinstance(exc, httpclient.ReadTimeout):
        return UpstreamTimeout(f"backend {name} timed out: {exc}")
    if isinstance(exc, httpclient.ConnectError):
        return UpstreamError(f"backend {name} is unreachable: {exc}", code="upstream_unreachable")
    if isinstance(exc, httpclient.ConnectionDropped):
        return UpstreamError(f"backend {name} dropped the connection", code="upstream_disconnected")
    if isinstance(exc, httpclient.ProtocolError):
        return UpstreamError(f"backend {name} sent a malformed response")
    return exc  # cancellation and programming errors propagate unchanged


def _error_text(body: object) -> str:
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = (err.get("message") or err.get("detail") or "") if isinstance(err, dict) else err
        return str(msg)[:_MAX_ERROR_TEXT]
    return ""


def _status_error(status: int, raw: bytes, name: str) -> OwstackError:
    try:
        text = _error_text(orjson.loads(raw))
    except orjson.JSONDecodeError:
        text = raw[:_MAX_ERROR_TEXT].decode("utf-8", "replace")
    if status in (400, 413, 422):
        # The upstream judged the request itself (context too long, bad parameter): the client's to fix.
        return InvalidRequest(
            f"backend {name} rejected the request: {text}" if text else f"backend {name} rejected the request"
        )
    if status in (401, 403):
        return UpstreamError(f"backend {name} refused owstack's credentials (HTTP {status})", code="upstream_auth")
    if status == 429:
        return UpstreamError(f"backend {name} is rate limiting (HTTP 429)", code="upstream_rate_limited")
    return UpstreamError(f"backend {name} failed with HTTP {status}", code=f"upstream_http_{status}")
