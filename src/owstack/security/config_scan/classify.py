"""Which checker reads a repository path: agent configs are recognised by name wherever they sit."""

from __future__ import annotations

MAX_FILE_BYTES = 5 * 1024 * 1024  # past this a file is parsed whole up to reading.MAX_PARSE_BYTES, then streamed
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "site-packages",
        ".cache",
    }
)
MCP_NAMES = frozenset(
    {
        ".mcp.json",
        "mcp.json",
        "mcp_config.json",
        "claude_desktop_config.json",
        "opencode.json",
        "opencode.jsonc",
        ".opencode.json",
        "crush.json",
        ".crush.json",
    }
)
#: `<folder>/settings.json` files that hold MCP servers: Gemini CLI, Qwen Code (a Gemini CLI fork), Zed
MCP_SETTINGS_DIRS = frozenset({".gemini", ".qwen"})
INSTRUCTION_NAMES = frozenset(
    {
        "agents.md",
        "agent.md",
        "claude.md",
        "claude.local.md",
        "gemini.md",
        ".cursorrules",
        ".windsurfrules",
        ".clinerules",
        "copilot-instructions.md",
        "skill.md",
        "conventions.md",
        ".github/copilot-instructions.md",
    }
)
INSTRUCTION_DIRS = (
    ".cursor/rules",
    ".claude/commands",
    ".claude/agents",
    ".clinerules",
    ".roo/rules",
    ".kiro/steering",
    ".continue/rules",
    ".windsurf/rules",
    ".github/instructions",
    ".github/prompts",
    ".junie",
)
PIN_NAMES = frozenset(
    {"pyproject.toml", "pipfile", "pipfile.lock", "setup.cfg", "setup.py", "uv.lock", "poetry.lock", "environment.yml"}
)
TEMPLATE_NAMES = frozenset({"tokenizer_config.json", "chat_template.json", "chat_template.jinja"})


def classify(rel: str) -> tuple[str, bool] | None:
    """(kind, is_json) of a repository path, or None if no checker applies."""
    p = rel.lower()
    name, parent = p.rsplit("/", 1)[-1], p.rsplit("/", 2)[-2] if "/" in p else ""
    if parent == ".claude" and name in ("settings.json", "settings.local.json"):
        return "claude", True
    if name == "settings.json" and parent in MCP_SETTINGS_DIRS:
        return "agent-settings", True
    if name in MCP_NAMES:
        return "mcp", True
    if (name == "hooks.json" and parent in (".cursor", ".windsurf")) or name.endswith(".kiro.hook"):
        return "hooks", True
    if name == "settings.json" and parent == ".zed":
        return "zed", True
    if (parent == ".continue" and name.startswith("config.")) or "/.continue/mcpservers/" in "/" + p:
        if name.endswith((".yaml", ".yml")):
            return "mcp-yaml", False
        if name.endswith(".json"):
            return "mcp", True
    if p.endswith(".codex/config.toml"):
        return "codex", False
    if name == ".env" or name.startswith(".env."):
        return "dotenv", False
    if name in (".aider.conf.yml", ".aider.conf.yaml"):
        return "aider", False
    if p.endswith(".vscode/tasks.json"):
        return "tasks", True
    if p.endswith(".vscode/settings.json"):
        return "settings", True
    if name.endswith(".code-workspace"):
        return "workspace", True
    if name in (".devcontainer.json", "devcontainer.json") and (name.startswith(".") or "/.devcontainer" in "/" + p):
        return "devcontainer", True
    if (
        name in INSTRUCTION_NAMES
        or name.endswith((".instructions.md", ".prompt.md", ".mdc"))
        or any(("/" + p).startswith("/" + d + "/") or f"/{d}/" in "/" + p for d in INSTRUCTION_DIRS)
    ):
        return "instructions", False
    if name in TEMPLATE_NAMES:
        return "template", name.endswith(".json")
    if (
        (name.startswith("requirements") and name.endswith((".txt", ".in")))
        or name in PIN_NAMES
        or name.startswith(("dockerfile", "containerfile"))
        or name.endswith((".dockerfile", ".containerfile"))
        or (name.startswith(("docker-compose", "compose")) and name.endswith((".yml", ".yaml")))
    ):
        return "pins", False
    if name.endswith((".yml", ".yaml")):
        return "pins?", False  # Kubernetes or CI files that may name a Langflow image
    if name.endswith(".json"):
        return "flow?", True
    return None
