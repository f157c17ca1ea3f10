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
#: an env map entry that loads code into every process (`"LD_PRELOAD": ...`, `"NODE_OPTIONS": "--require ..."`)
_LOADS_CODE = re.compile(
    r'"(?:'
    + "|".join(re.escape(str(v)) for v in env_data().get("preload", []))
    + r')"\s*:\s*"[^"]|"NODE_OPTIONS"\s*:\s*"[^"]*(?:--require|--import|--loader|--experimental-loader|-r\s)'
)
_STREAM_RULES["claude"].append((_LOADS_CODE, "OWS-CC-006", "high", "`env` loads code into every command"))
_STREAM_RULES["settings"].append((_LOADS_CODE, "OWS-VSC-002", "high", "an env setting loads code into every program"))
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
    text = read_config(file, rel, limit)
    return text if isinstance(text, Finding) else text[0]


def read_config(file: Path, rel: str, limit: int = MAX_PARSE_BYTES) -> tuple[str, Finding | None] | Finding:
    """(text, note) of a config file, or the OWS-SCAN-001 finding that says why it was skipped.

    The tools that read these files are lenient: Node and VS Code read bytes that are not UTF-8 as U+FFFD, bash
    and git do not care about the encoding of a comment, direnv's bash drops NUL bytes. So a stray invalid byte or
    a NUL does not make the file unreadable here either: it is decoded the same way and checked, with a note
    (OWS-SCAN-001, low). A UTF-16 or UTF-32 file with a byte-order mark is decoded as such. Only a file that is
    mostly NULs or not text at all is skipped as binary."""

    def skipped(why: str) -> Finding:
        return finding("OWS-SCAN-001", rel, 1, f"skipped: {why}")

    try:
        size = file.stat().st_size
        if size > limit:
            return skipped(f"file of {size} bytes is larger than {limit}")
        data = file.read_bytes()
    except OSError as exc:
        return skipped(f"unreadable ({exc.strerror or exc})")
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError:
                break
            return text, finding("OWS-SCAN-001", rel, 1, f"{codec.upper()} text (decoded and checked)")
    note = None
    head = data[:8192]
    if b"\x00" in head:
        if re.search(rb"[\x01-\x08\x0e-\x1a\x1c-\x1f]", head) or head.count(b"\x00") * 4 > len(head):
            return skipped("binary file")  # other control bytes beside the NULs: not a text file with a NUL slipped in
        data = data.replace(b"\x00", b"")
        note = finding("OWS-SCAN-001", rel, 1, "NUL bytes in a text file (removed, then checked)")
    try:
        return data.decode("utf-8"), note
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", "replace")
        if text.count("\ufffd") * 4 > len(text):
            return skipped(f"not UTF-8 text (byte {exc.start})")
        return text, finding(
            "OWS-SCAN-001", rel, 1, f"bytes that are not UTF-8 (from byte {exc.start}; read as U+FFFD)"
        )


_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


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
        out += _chunk_findings(text, first_line, rel, kind, seen, "oversized file")
    return out


def searched_findings(text: str, rel: str, kind: str) -> list[Finding]:
    """The same pattern search over the text of a file that could not be parsed: a JSON file with a missing comma
    or a stray character is still read by VS Code's error-tolerant parser and by hand-written readers."""
    return _chunk_findings(text, 1, rel, kind, set(), "file not parsed, searched", commands_only=_BY_COMMAND)


#: `\u0072unOn`: a JSON escape of a printable ASCII character, decoded before the search (no newline is made, so
#: line numbers hold)
_ASCII_ESCAPE = re.compile(r"\\u00([2-7][0-9a-fA-F])")
_JSON_KINDS = frozenset(
    {
        "tasks",
        "settings",
        "workspace",
        "claude",
        "devcontainer",
        "mcp",
        "agent-settings",
        "opencode",
        "crush",
        "zed",
        "q-agent",
        "hooks",
        "cursor-environment",
    }
)


def _chunk_findings(
    text: str,
    first_line: int,
    rel: str,
    kind: str,
    seen: set[tuple[str, int]],
    why: str,
    commands_only: frozenset[str] = frozenset(),
) -> list[Finding]:
    out: list[Finding] = []
    if kind in _JSON_KINDS and "\\u00" in text:
        text = _ASCII_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    for pattern, rule, severity, message in _STREAM_RULES.get(kind, []):
        if rule in commands_only:
            continue  # reported from the commands themselves (below), not from the key that holds them
        for m in pattern.finditer(text):
            line = first_line + text.count("\n", 0, m.start())
            if (rule, line) not in seen:
                seen.add((rule, line))
                out.append(finding(rule, rel, line, f"{message} ({why})", severity=severity))
    for markers, pattern, rule, severity, message in _MARKED_RULES.get(kind, []):
        counted, line = 0, first_line
        ranges = _marked_ranges(text, markers)
        if ranges is None:
            note = f"{message}? more than {MAX_MARKERS} download commands in 4 MiB, not searched one by one"
            if (rule, first_line) not in seen:
                seen.add((rule, first_line))
                out.append(finding(rule, rel, first_line, f"{note} ({why})", severity=severity))
            continue
        for lo, hi in ranges:
            for m in pattern.finditer(text, lo, hi):
                line += text.count("\n", counted, m.start())
                counted = m.start()
                if (rule, line) not in seen:
                    seen.add((rule, line))
                    out.append(finding(rule, rel, line, f"{message} ({why})", severity=severity))
    if kind in _COMMAND_RULES:
        out += _mcp_commands(text, rel, first_line, seen, kind, why)
    return out


#: in a small file that does not parse, hooks are reported by their commands: `"hooks": {` alone runs nothing
_BY_COMMAND = frozenset({"OWS-CC-001"})
#: kind -> (rule for a command that runs inline or downloaded code, rule otherwise, severity otherwise: None for
#: the command's own) for the `"command": ...` entries of a file only searched
_COMMAND_RULES: dict[str, tuple[str, str, Severity | None]] = {
    **{k: ("OWS-MCP-002", "OWS-MCP-001", None) for k in ("mcp", "codex", "agent-settings", "opencode", "crush", "zed")},
    "q-agent": ("OWS-MCP-002", "OWS-MCP-001", None),
    "hooks": ("OWS-HK-001", "OWS-HK-001", "high"),
    "claude": ("OWS-CC-001", "OWS-CC-001", "high"),
    "cursor-environment": ("OWS-DC-002", "OWS-DC-002", None),
}


def _mcp_commands(
    text: str, rel: str, first_line: int, seen: set[tuple[str, int]], kind: str = "mcp", why: str = "oversized file"
) -> list[Finding]:
    critical_rule, rule_else, severity_else = _COMMAND_RULES[kind]
    out = []
    for m in _MCP_COMMAND.finditer(text):
        line = first_line + text.count("\n", 0, m.start())
        args = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group("args") or "")
        danger = risk(m.group("cmd"), args or None)
        critical = danger.severity == "critical"
        rule = critical_rule if critical else rule_else
        severity: Severity = danger.severity if critical or severity_else is None else severity_else
        if (rule, line) not in seen:
            seen.add((rule, line))
            executes = " ".join([m.group("cmd"), *args])[:200]
            message = f"command in a file that was not parsed ({why}): {danger.why}"
            out.append(finding(rule, rel, line, message, executes=executes, severity=severity))
    return out
