"""OpenAI chat completions (`POST /v1/chat/completions`): the internal format already, nearly as-is."""

from owstack.protocols.openai_chat.codec import OpenAIChat

__all__ = ["OpenAIChat"]
