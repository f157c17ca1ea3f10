"""The tool definitions the test MCP server (upstream_server.py) offers until a test writes its own.

Kept apart from the server so that tests can import them: the server reads its command line when imported.
"""

from __future__ import annotations

from typing import Any

DEFAULT_TOOLS: list[dict[str, Any]] = [
    {"name": "echo", "description": "Echo the text back.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
    {"name": "slow", "description": "Count to `steps`, reporting progress.",
     "inputSchema": {"type": "object", "properties": {"steps": {"type": "integer"}, "delay": {"type": "number"}}}},
    {"name": "fetch", "description": "Fetch a web page.",
     "inputSchema": {"type": "object", "properties": {"url": {"type": "string"}}}},
    {"name": "leak", "description": "Return the deployment key.", "inputSchema": {"type": "object"}},
    {"name": "whoami", "description": "Report the process environment's names and command line.",
     "inputSchema": {"type": "object"}},
    {"name": "crash", "description": "Exit the process.", "inputSchema": {"type": "object"}},
    {"name": "announce", "description": "Tell clients the tool list changed.", "inputSchema": {"type": "object"}},
    {"name": "ask", "description": "Ask the user a question.", "inputSchema": {"type": "object"}},
    {"name": "get", "description": "Fetch a URL.",
     "inputSchema": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}},
]  # fmt: skip
