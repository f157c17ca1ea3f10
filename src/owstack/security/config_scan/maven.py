"""Maven's project files (OWS-TOOL-001, high: they run when the developer or an agent builds or tests, `mvn test`,
`mvn package`, and when an IDE imports the project with its lifecycle bindings):

    pom.xml             `exec-maven-plugin` (`exec`) and `maven-antrun-plugin` (`<exec>` tasks) executions bound to a
                        phase: the command is judged as any config command is (a download run, inline code: high), or
                        by the script of the repository it runs; any line of the file that downloads and runs code
                        GMavenPlus / groovy-maven-plugin inline Groovy that runs what it downloads
    .mvn/jvm.config     JVM options of every `mvn` run: `-javaagent:`/`-agentpath:` load an agent into Maven itself
    .mvn/extensions.xml core extensions Maven loads into every run (low: which ones, so a person looks)

Read with regular expressions, not an XML parser: nothing in them is expanded (as `jetbrains.py`).
"""

from __future__ import annotations

import html
import re
import shlex

from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line
from owstack.security.config_scan.scripts import dangerous_line, local_risk, windowed_payload
from owstack.security.config_scan.toolconfigs import GRADLE_CODE
from owstack.security.findings import Finding, finding

_PLUGIN = re.compile(r"<plugin>(.*?)</plugin>", re.S)
_EXECUTION = re.compile(r"<execution>(.*?)</execution>", re.S)
_EXEC_TASK = re.compile(r"<exec\b([^>]*?)(?:/>|>(.*?)</exec>)", re.S)
_ANT_ARG = re.compile(r"<arg\s+(value|line)\s*=\s*\"([^\"]*)\"")
#: a plugin that runs inline Groovy (GMavenPlus `<scripts><script>`, groovy-maven-plugin `<source>`)
_GROOVY_PLUGIN = re.compile(
    r"<plugin>(?:(?!</plugin>).)*?<artifactId>\s*(?:gmavenplus-plugin|groovy-maven-plugin)\s*</artifactId>.*?</plugin>",
    re.S,
)
_WHEN = "Maven runs it in the `{phase}` phase of every build (`mvn test`, `mvn package`)"


def _tag(block: str, name: str) -> str | None:
    m = re.search(rf"<{name}>\s*(.*?)\s*</{name}>", block, re.S)
    return html.unescape(m.group(1)) if m else None


def check_pom(src: ScanFile) -> list[Finding]:
    out: list[Finding] = []
    for plugin in _PLUGIN.finditer(src.text):
        artifact = _tag(plugin.group(1), "artifactId") or ""
        if artifact not in ("exec-maven-plugin", "maven-antrun-plugin"):
            continue
        for execution in _EXECUTION.finditer(plugin.group(1)):
            body = execution.group(1)
            phase = _tag(body, "phase") or "default"
            if phase == "none":
                continue
            start = plugin.start(1) + execution.start(1)
            for offset, command in _commands(artifact, body):
                judged = _judge(src, command)
                if judged is not None:
                    number = src.text.count("\n", 0, start + offset) + 1
                    message = f"{_WHEN.format(phase=phase)}: {artifact} {judged}"
                    out.append(
                        finding(
                            "OWS-TOOL-001", src.rel, number, message, executes=command_line(command), severity="high"
                        )
                    )
    for m in _GROOVY_PLUGIN.finditer(src.text):  # inline Groovy of gmavenplus / groovy-maven-plugin executions
        if _tag(m.group(0), "phase") == "none":
            continue
        script = html.unescape(m.group(0)).replace("<![CDATA[", "").replace("]]>", "")
        payload = windowed_payload(script, *GRADLE_CODE)
        if payload is not None and not out:
            number = src.text.count("\n", 0, m.start()) + payload[0]
            message = f"Maven runs this Groovy script in the build: line {number} {payload[1]}"
            line = src.text.splitlines()[number - 1].strip()[:200]
            out.append(finding("OWS-TOOL-001", src.rel, number, message, executes=line, severity="high"))
    # executions unbound (`<phase>none</phase>`) run only when named: blanked, lines kept, before the search
    text = _EXECUTION.sub(
        lambda m: re.sub(r"[^\n]", " ", m.group(0)) if _tag(m.group(1), "phase") == "none" else m.group(0), src.text
    )
    if not out and (found := dangerous_line(html.unescape(text))) is not None:
        message = f"a Maven build reads this file: line {found[0]} {found[1].why}"
        line = src.text.splitlines()[found[0] - 1].strip()[:200]
        out.append(finding("OWS-TOOL-001", src.rel, found[0], message, executes=line, severity="high"))
    return out


def _commands(artifact: str, body: str) -> list[tuple[int, str]]:
    """(offset, command line) of what an execution runs."""
    if artifact == "exec-maven-plugin":
        executable = _tag(body, "executable")
        if not executable:
            return []
        args = [html.unescape(a) for a in re.findall(r"<argument>(.*?)</argument>", body, re.S)]
        extra = _tag(body, "commandlineArgs")
        words = [executable, *args]
        line = shlex.join(words) + (f" {extra}" if extra else "")
        return [(body.find("<executable>"), line)]
    out = []
    for task in _EXEC_TASK.finditer(body):
        program = re.search(r"\bexecutable\s*=\s*\"([^\"]*)\"", task.group(1))
        if program is None:
            continue
        words = [html.unescape(program.group(1))]
        for kind, value in _ANT_ARG.findall(task.group(2) or ""):
            value = html.unescape(value)
            words += value.split() if kind == "line" else [value]
        out.append((task.start(), shlex.join(words)))
    return out


def _judge(src: ScanFile, command: str) -> str | None:
    danger = risk(command)
    if danger.severity == "critical":
        return f"runs {danger.why.removeprefix('it ')}"
    local = local_risk(src, command)
    if local is not None and local.severity == "critical":
        return local.why
    return None


_AGENT = re.compile(r"(?:^|\s)(-javaagent:\S+|-agentpath:\S+)")


def check_mvn(src: ScanFile) -> list[Finding]:
    """`.mvn/jvm.config` and `.mvn/extensions.xml`."""
    name = src.rel.rsplit("/", 1)[-1].lower()
    out: list[Finding] = []
    if name == "jvm.config":
        for number, line in enumerate(src.text.splitlines(), start=1):
            for m in _AGENT.finditer(line):
                message = f"every `mvn` run starts its JVM with {m.group(1)!r}: the agent's code runs inside Maven"
                out.append(finding("OWS-TOOL-001", src.rel, number, message, executes=m.group(1), severity="high"))
    elif name == "extensions.xml":
        for m in re.finditer(r"<extension>(.*?)</extension>", src.text, re.S):
            coords = ":".join(_tag(m.group(1), k) or "?" for k in ("groupId", "artifactId", "version"))
            number = src.text.count("\n", 0, m.start()) + 1
            message = f"Maven loads the core extension {coords} into every build"
            out.append(finding("OWS-TOOL-001", src.rel, number, message, executes=coords, severity="low"))
    return out
