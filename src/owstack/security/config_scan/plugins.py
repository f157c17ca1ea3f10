"""Claude Code plugins a repository enables from a marketplace in one of its own folders.

`extraKnownMarketplaces: {"m": {"source": {"source": "directory", "path": ".agents"}}}` with
`enabledPlugins: {"p@m": true}` loads plugin `p` from the marketplace file `.agents/.claude-plugin/marketplace.json`
of the checkout. Such a plugin is part of the repository, so what it brings can be read here rather than
assumed: skills, commands and agents are text (its `SKILL.md` files are scanned as instruction files), while
hooks, MCP and language servers run programs by themselves, and a command's !`…` line runs when invoked.
`local_plugin` says which of these the plugin carries and how risky its commands are; a marketplace elsewhere
(GitHub, a git URL, a folder outside the checkout) cannot be read and keeps the rule's own severity.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from owstack.security.config_scan import hooks, mcp
from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.textfiles import BANG_COMMAND
from owstack.security.findings import Severity
from owstack.security.jsonc import JSONCError, parse

#: plugin manifest keys and files that start programs by themselves
_RUNNERS = (("hooks", "hooks/hooks.json"), ("mcpServers", ".mcp.json"), ("lspServers", ".lsp.json"))


@dataclasses.dataclass(frozen=True)
class LocalPlugin:
    folder: str  # relative to the project
    runs: tuple[str, ...]  # what starts programs: "hooks", "mcpServers", "lspServers", "commands"
    severity: Severity  # low (text only), high (programs), critical (inline or downloaded code)


def local_plugin(project: Path, market: Any, plugin: str) -> LocalPlugin | None:
    """The plugin `plugin` of marketplace spec `market` if both are folders inside `project`, else None."""
    source = market.get("source") if isinstance(market, dict) else None
    if not (isinstance(source, dict) and source.get("source") == "directory" and isinstance(source.get("path"), str)):
        return None
    root = project.resolve()
    market_dir = _inside(root, root / source["path"])
    listing = _json(market_dir / ".claude-plugin" / "marketplace.json") if market_dir else None
    entries = listing.get("plugins") if isinstance(listing, dict) else None
    entry = next((e for e in entries or [] if isinstance(e, dict) and e.get("name") == plugin), None)
    if market_dir is None or entry is None or not isinstance(entry.get("source"), str):
        return None
    folder = _inside(root, market_dir / entry["source"])
    if folder is None or not folder.is_dir():
        return None
    manifest = _json(folder / ".claude-plugin" / "plugin.json")
    runs: list[str] = []
    commands: list[Any] = []
    for key, default in _RUNNERS:
        declared = [d.get(key) for d in (manifest, entry) if isinstance(d, dict) and d.get(key)]
        files = [
            f for f in [folder / default] + [folder / d for d in declared if isinstance(d, str)] if _inside(root, f)
        ]
        documents = [d for d in declared if not isinstance(d, str)] + [_json(f) for f in files if f.is_file()]
        if declared or any(f.is_file() for f in files):
            runs.append(key)
        for doc in documents:
            if key == "mcpServers":
                wrapped = doc if isinstance(doc, dict) and "mcpServers" in doc else {"mcpServers": doc}
                commands += list(mcp.commands(wrapped).values())
            else:
                commands += [c for _, c in hooks.commands_in(doc)]
    worst = [risk(" ".join(map(str, c)) if isinstance(c, list) else str(c)).severity for c in commands]
    if any(risk(line).severity == "critical" for line in _bang_lines(folder)):
        runs.append("commands")  # a !`…` line that downloads or inlines code; ordinary ones are OWS-CC-014's call
        worst.append("critical")
    severity: Severity = "critical" if "critical" in worst else "high" if runs else "low"
    return LocalPlugin(folder.relative_to(root).as_posix() or ".", tuple(runs), severity)


def _bang_lines(folder: Path) -> list[str]:
    """The !`command` lines of the plugin's commands, agents and skills (run when the developer invokes them)."""
    out: list[str] = []
    for sub in ("commands", "agents", "skills"):
        for md in sorted((folder / sub).rglob("*.md")) if (folder / sub).is_dir() else []:
            try:
                out += BANG_COMMAND.findall(md.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                continue
    return out


def _inside(root: Path, path: Path) -> Path | None:
    resolved = path.resolve()
    return resolved if resolved.is_relative_to(root) else None


def _json(path: Path) -> Any:
    try:
        return parse(path.read_text(encoding="utf-8")).value
    except (OSError, UnicodeDecodeError, JSONCError):
        return None
