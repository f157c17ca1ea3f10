"""Anthropic Messages (`POST /v1/messages`, `/v1/messages/count_tokens`), as Claude Code uses it."""

from owstack.protocols.anthropic.codec import AnthropicMessages

__all__ = ["AnthropicMessages"]
