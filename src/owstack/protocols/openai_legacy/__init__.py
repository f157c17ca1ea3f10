"""OpenAI's older endpoints, routed to backends that serve them: `POST /v1/completions` (legacy text
completions) and `POST /v1/embeddings`. Their bodies travel upstream as the client wrote them."""

from owstack.protocols.openai_legacy.codec import OpenAICompletions, OpenAIEmbeddings

__all__ = ["OpenAICompletions", "OpenAIEmbeddings"]
