"""The backend protocol: three calls and a health probe. Everything engine-specific lives behind it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from owstack.types import ChatRequest, ChunkStream, Completion


@runtime_checkable
class Backend(Protocol):
    name: str
    engine: str
    #: the model id this backend serves (listed in /v1/models, sent upstream)
    model: str
    jurisdiction: str
    proprietary: bool

    async def start(self) -> None:
        """Open pools, load weights. Called once at gateway start-up."""

    async def aclose(self) -> None:
        """Release connections, threads and memory."""

    async def complete(self, request: ChatRequest) -> Completion:
        """A whole response. Raises `OwstackError` subclasses (UpstreamError, UpstreamTimeout, ...)."""
        ...

    def stream(self, request: ChatRequest) -> ChunkStream:
        """Chunks as they come. Failures before the first chunk raise from the first `__anext__`."""
        ...

    async def list_models(self) -> list[str]:
        """The models the engine reports (best effort; the configured model when it cannot say)."""
        ...

    async def health(self, timeout: float = 2.0) -> bool:
        """An active probe: True when the engine answers."""
        ...
