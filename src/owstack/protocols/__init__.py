"""The wire protocols, one package each: OpenAI chat completions, Anthropic messages, OpenAI responses.

Each protocol parses its own requests into the internal `ChatRequest` and encodes the internal result (a
`Completion`, or a stream of OpenAI chunks) into its own format, errors included. Nothing else in the gateway
branches on the protocol: the handler (`api/handler.py`) and the stages speak the internal types only.
See `protocols/base.py` for the contract.
"""
