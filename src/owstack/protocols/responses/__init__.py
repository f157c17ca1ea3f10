"""OpenAI Responses (`/v1/responses`), as Codex CLI, the OpenAI Agents SDK and the `openai` SDK use it."""

from owstack.protocols.responses.codec import OpenAIResponses

__all__ = ["OpenAIResponses"]
