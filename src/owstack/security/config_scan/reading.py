"""Read a config file for checking; files past the size limit are scanned, not skipped.

Padding a file past a scanner's size limit is the cheapest bypass there is. Files up to
`MAX_PARSE_BYTES` are parsed whole (the JSONC parser skips whitespace runs at C speed); larger ones are
streamed in chunks with an overlap and searched for the constructs that execute or remove a prompt
(`streamed_findings`), so that a 1 GB `tasks.json` whose `folderOpen` task sits after the padding is
still reported. Binary and non-UTF-8 files are reported (OWS-SCAN-001) and skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from owstack.security.config_scan.commands import DOWNLOAD_EXEC, risk
from owstack.security.config_scan.common import env_data
from owstack.security.findings import Finding, Severity, finding

MAX_FILE_BYTES = 5 * 1024 * 1024  # above this, the file is reported as oversized
MAX_PARSE_BYTES = 64 * 1024 * 1024  # up to this, it is still parsed whole
CHUNK = 4 * 1024 * 1024
OVERLAP = 64 * 1024

#: kind -> (pattern, rule, severity, message) searched in files too large to parse
_STREAM_RULES: dict[str, list[tuple[re.Pattern[str], str, Severity, str]]] = {
    "tasks": [(re.compile(r'"runOn"\s*:\s*"folderOpen"'), "OWS-VSC-001", "critical", "a task runs on folder open")],
    "settings": [
        (
            re.compile(r'"chat\.[\w.]*autoApprove"\s*:\s*(?:true|\{|\[)'),
            "OWS-VSC-003",
            "critical",
            "tool auto-approval",
        ),
        (re.compile(r'"task\.allowAutomaticTasks"\s*:\s*"on"'), "OWS-VSC-003", "critical", "automatic tasks on"),
        (re.compile(r'"security\.workspace\.trust\.enabled"\s*:\s*false'), "OWS-VSC-003", "critical", "trust off"),
    ],
    "claude": [
        (re.compile(r'"hooks"\s*:\s*\{'), "OWS-CC-001", "high", "hooks run shell commands"),
        (re.compile(r'"bypassPermissions"'), "OWS-CC-007", "critical", "bypassPermissions"),
        (re.compile(r'"enableAllProjectMcpServers"\s*:\s*true'), "OWS-CC-009", "critical", "all MCP servers start"),
        (re.compile(r'"(?:apiKeyHelper|awsAuthRefresh|awsCredentialExport)"\s*:'), "OWS-CC-002", "high", "helper"),
        (
            re.compile(r'"(?:ANTHROPIC|CLAUDE|OPENAI|AWS_ENDPOINT)\w*(?:URL|BASE|ENDPOINT)\w*"\s*:\s*"'),
            "OWS-CC-004",
            "critical",
            "model traffic redirected",
        ),
        (re.compile(r'"enabledPlugins"\s*:'), "OWS-CC-013", "high", "plugins enabled"),
    ],
    "devcontainer": [
        (re.compile(r'"initializeCommand"\s*:'), "OWS-DC-001", "high", "initializeCommand runs on the host"),
        (re.compile(r'"privileged"\s*:\s*true|--privileged'), "OWS-DC-003", "critical", "privileged container"),
        (re.compile(r"docker\.sock"), "OWS-DC-003", "critical", "the Docker socket is mounted"),
    ],
}
_STREAM_RULES["workspace"] = _STREAM_RULES["tasks"] + _STREAM_RULES["settings"]
_STREAM_RULES["dotenv"] = [
    (
        re.compile(
            r"(?mi)^[ \t]*(?:export[ \t]+)?(?:"
            + "|".join(re.escape(str(v)) for v in env_data().get("agent_homes", []))
            + r")[ \t]*=[ \t]*[\"']?(?![/~]|\$\{?HOME)"
        ),
        "OWS-CX-001",
        "critical",
        "an agent's home points into the repository",
    )
]
#: kind -> (markers, pattern, rule, severity, message) for the files run by an ordinary command (npm install,
#: direnv, pre-commit, git), so that padding them past the parse limit does not hide a download-and-run line.
#: The pattern is tried only in a window around each marker: a regex tried at every position of a 64 MiB
#: padding run costs seconds.
_DOWNLOAD_MARKERS = ("curl", "wget", "iwr", "irm", "invoke-", "iex", "base64", "eval")
_MARKED_RULES: dict[str, list[tuple[tuple[str, ...], re.Pattern[str], str, Severity, str]]] = {
    "package": [(_DOWNLOAD_MARKERS, DOWNLOAD_EXEC, "OWS-PKG-001", "high", "an install script downloads and runs code")],
    "pre-commit": [(_DOWNLOAD_MARKERS, DOWNLOAD_EXEC, "OWS-PKG-003", "high", "a hook downloads and runs code")],
    "envrc": [(_DOWNLOAD_MARKERS, DOWNLOAD_EXEC, "OWS-ENV-002", "high", "direnv runs a download")],
    "gitconfig": [
        (
            ("fsmonitor",),
            re.compile(r"(?i)\bfsmonitor[ \t]*=[ \t]*(?![\"']?(?:true|false|yes|no|on|off|1|0)[\"']?[ \t]*(?:\n|$))\S"),
            "OWS-GIT-001",
            "critical",
            "core.fsmonitor names a program git runs on every `git status`",
        )
    ],
}
WINDOW = 700
MAX_MARKERS = 500  # per chunk: no such file has more; past this the chunk is reported rather than searched


def _marked_ranges(text: str, markers: tuple[str, ...]) -> list[tuple[int, int]] | None:
    """The spans of `text` within WINDOW of a marker (case-insensitive), overlapping ones merged: no markers, no
    regex work. None when the markers are too many to search in bounded time (a chunk stuffed with `curl`
    is itself the finding)."""
    lower = text.lower()
    hits: list[int] = []
    for marker in markers:
        at = lower.find(marker)
        while at >= 0:
            hits.append(at)
            if len(hits) > MAX_MARKERS:
                return None
            at = lower.find(marker, at + len(marker))
    ranges: list[tuple[int, int]] = []
    for at in sorted(hits):
        lo, hi = max(0, at - WINDOW), min(len(text), at + WINDOW)
        if ranges and lo <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges


#: a server's command and arguments, as JSON (`"command": "x", "args": [...]`) or TOML (`command = "x"` then
#: `args = [...]` on the next line)
_MCP_COMMAND = re.compile(
    r'"?command"?\s*[:=]\s*"(?P<cmd>[^"]{1,500})"(?:\s*,?\s*"?args"?\s*[:=]\s*\[(?P<args>[^\]]{0,4000})\])?'
)


def read_text(file: Path, rel: str, limit: int = MAX_PARSE_BYTES) -> str | Finding:
    """The file's text, or an OWS-SCAN-001 finding saying why it was skipped."""

    def skipped(why: str) -> Finding:
        return finding("OWS-SCAN-001", rel, 1, f"skipped: {why}")

    try:
        size = file.stat().st_size
        if size > limit:
            return skipped(f"file of {size} bytes is larger than {limit}")
        data = file.read_bytes()
    except OSError as exc:
        return skipped(f"unreadable ({exc.strerror or exc})")
    if b"\x00" in data[:8192]:
        return skipped("binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return skipped(f"not UTF-8 text (byte {exc.start})")


def chunks(file: Path) -> Iterator[tuple[int, int, str]]:
    """(byte offset, line number at the chunk's start, text) over the file, chunks overlapping."""
    line = 1
    offset = 0
    tail = b""
    with file.open("rb") as fh:
        while block := fh.read(CHUNK):
            data = tail + block
            start = offset - len(tail)
            yield start, line - tail.count(b"\n"), data.decode("utf-8", "replace")
            line += block.count(b"\n")
            offset += len(block)
            tail = data[-OVERLAP:]


def streamed_findings(file: Path, rel: str, kind: str) -> list[Finding]:
    """Findings from a pattern search of an oversized file, plus a note that it was only searched."""
    size = file.stat().st_size
    out = [
        finding(
            "OWS-SCAN-001",
            rel,
            1,
            f"file of {size} bytes is larger than {MAX_PARSE_BYTES}: searched for dangerous settings, not parsed",
            severity="medium",
        )
    ]
    seen: set[tuple[str, int]] = set()
    for _, first_line, text in chunks(file):
        for pattern, rule, severity, message in _STREAM_RULES.get(kind, []):
            for m in pattern.finditer(text):
                line = first_line + text.count("\n", 0, m.start())
                if (rule, line) not in seen:
                    seen.add((rule, line))
                    out.append(finding(rule, rel, line, f"{message} (oversized file)", severity=severity))
        for markers, pattern, rule, severity, message in _MARKED_RULES.get(kind, []):
            counted, line = 0, first_line
            ranges = _marked_ranges(text, markers)
            if ranges is None:
                why = f"{message}? more than {MAX_MARKERS} download commands in 4 MiB, not searched one by one"
                if (rule, first_line) not in seen:
                    seen.add((rule, first_line))
                    out.append(finding(rule, rel, first_line, f"{why} (oversized file)", severity=severity))
                continue
            for lo, hi in ranges:
                for m in pattern.finditer(text, lo, hi):
                    line += text.count("\n", counted, m.start())
                    counted = m.start()
                    if (rule, line) not in seen:
                        seen.add((rule, line))
                        out.append(finding(rule, rel, line, f"{message} (oversized file)", severity=severity))
        if kind in ("mcp", "codex"):
            out += _mcp_commands(text, rel, first_line, seen)
    return out


def _mcp_commands(text: str, rel: str, first_line: int, seen: set[tuple[str, int]]) -> list[Finding]:
    out = []
    for m in _MCP_COMMAND.finditer(text):
        line = first_line + text.count("\n", 0, m.start())
        args = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group("args") or "")
        danger = risk(m.group("cmd"), args or None)
        rule = "OWS-MCP-002" if danger.severity == "critical" else "OWS-MCP-001"
        if (rule, line) not in seen:
            seen.add((rule, line))
            executes = " ".join([m.group("cmd"), *args])[:200]
            message = f"server command in an oversized file: {danger.why}"
            out.append(finding(rule, rel, line, message, executes=executes, severity=danger.severity))
    return out
