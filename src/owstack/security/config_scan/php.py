"""PHP tools' project configs that name PHP code the tool runs (OWS-TOOL-001, high: it runs when the developer or
an agent tests, lints or formats, and PHP editor extensions run these tools on open and on save):

    phpunit.xml, phpunit.xml.dist, phpunit.dist.xml   `bootstrap="..."`: included before every test run
    .php-cs-fixer.php, .php-cs-fixer.dist.php, .php_cs, .php_cs.dist, rector.php, ecs.php
                          the config is PHP, run by every `php-cs-fixer fix` (and on save by its extensions)
    phpstan.neon, phpstan.neon.dist, phpstan.dist.neon
                          `bootstrapFiles`/`bootstrap`: included before analysis; `includes` (followed one level)
    psalm.xml, psalm.xml.dist   `autoloader="..."`: included before analysis

A file named there is read (inside the repository only) and judged by `scripts.php_risk`: a shell line that downloads
and runs code, an include of a URL, `eval` of decoded bytes, or code run beside a download. Composer's scripts
(`post-install-cmd`, run by `composer install`) are `packages.check_package_json`'s; `php scripts/x.php` there is
read the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

from owstack.security.config_scan.commands import Risk
from owstack.security.config_scan.common import ScanFile
from owstack.security.config_scan.scripts import MAX_SCRIPT_BYTES, php_risk
from owstack.security.findings import Finding, finding

PHPUNIT = frozenset({"phpunit.xml", "phpunit.xml.dist", "phpunit.dist.xml"})
PHP_CONFIGS = frozenset(
    {".php-cs-fixer.php", ".php-cs-fixer.dist.php", ".php_cs", ".php_cs.dist", "rector.php", "ecs.php"}
)
PHPSTAN = frozenset({"phpstan.neon", "phpstan.neon.dist", "phpstan.dist.neon"})
PSALM = frozenset({"psalm.xml", "psalm.xml.dist"})
NAMES = PHPUNIT | PHP_CONFIGS | PHPSTAN | PSALM

_WHEN = {
    "phpunit": "PHPUnit includes its bootstrap before every test run",
    "config": "the config is PHP that every run of the tool executes (and its editor extensions on save)",
    "phpstan": "PHPStan includes its bootstrap files before every analysis (its editor extensions run it on open)",
    "psalm": "Psalm includes its autoloader before every analysis",
}
_ATTRIBUTE = {"phpunit": re.compile(r"\bbootstrap\s*=\s*[\"']([^\"']+)[\"']")}
_ATTRIBUTE["psalm"] = re.compile(r"\bautoloader\s*=\s*[\"']([^\"']+)[\"']")
#: NEON (YAML-like): `bootstrap: x.php`, and the items of `bootstrapFiles:` / `includes:` lists
_NEON_KEY = re.compile(r"^(\s*)(bootstrapFiles|bootstrap|includes)\s*:\s*(.*)$")
_NEON_ITEM = re.compile(r"^\s*-\s*['\"]?([^'\"#\s]+)")


def check(src: ScanFile) -> list[Finding]:
    name = src.rel.rsplit("/", 1)[-1].lower()
    kind = "phpunit" if name in PHPUNIT else "psalm" if name in PSALM else "phpstan" if name in PHPSTAN else "config"
    root, here = src.root.resolve(), src.path.resolve().parent
    if kind == "config":
        found = php_risk(src.text)
        return [] if found is None else [_finding(src, kind, found[0], found[1].why)]
    if kind == "phpstan":
        hit = _neon(root, here, src.text, 0)
        return [] if hit is None else [_finding(src, kind, hit[0], hit[1].why)]
    for m in _ATTRIBUTE[kind].finditer(src.text):
        danger = _included(root, here, m.group(1))
        if danger is not None:
            return [_finding(src, kind, src.text.count("\n", 0, m.start()) + 1, danger.why)]
    return []


def _finding(src: ScanFile, kind: str, number: int, why: str) -> Finding:
    line = src.text.splitlines()[number - 1].strip()[:200] if src.text else ""
    return finding(
        "OWS-TOOL-001", src.rel, number, f"{_WHEN[kind]}: line {number} {why}", executes=line, severity="high"
    )


def _neon(root: Path, here: Path, text: str, depth: int) -> tuple[int, Risk] | None:
    """(line, risk) of the first bootstrap file, or included config, of a PHPStan config that runs dangerous code."""
    key = None
    for number, line in enumerate(text.splitlines(), start=1):
        m = _NEON_KEY.match(line)
        if m is not None:
            key, value = m.group(2), m.group(3).strip().strip("'\"")
            paths = [value] if value and not value.startswith(("[", "#")) else []
        elif key is not None and (item := _NEON_ITEM.match(line)) is not None:
            paths = [item.group(1)]
        else:
            if line.strip() and not line.startswith((" ", "\t", "-")):
                key = None
            continue
        for rel in paths:
            if key == "includes" and not rel.endswith(".php"):
                if depth >= 1:
                    continue
                path = _inside(root, here, rel)
                body = _text(path) if path is not None else None
                deeper = _neon(root, path.parent, body, depth + 1) if path is not None and body is not None else None
                if deeper is not None:
                    return number, Risk("critical", f"includes {rel}, whose line {deeper[0]} {deeper[1].why}")
                continue
            danger = _included(root, here, rel)
            if danger is not None:
                return number, danger
    return None


def _included(root: Path, here: Path, rel: str) -> Risk | None:
    path = _inside(root, here, rel)
    body = _text(path) if path is not None else None
    found = php_risk(body) if body is not None else None
    return None if found is None else Risk("critical", f"includes {rel}, whose line {found[0]} {found[1].why}")


def _inside(root: Path, here: Path, rel: str) -> Path | None:
    if "%" in rel or rel.startswith(("/", "~")):
        return None  # `%rootDir%/...`: the tool's own files
    try:
        path = (here / rel).resolve()
        path.relative_to(root)
    except (OSError, ValueError):
        return None
    return path if path.is_file() else None


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path.stat().st_size <= MAX_SCRIPT_BYTES else None
    except OSError:
        return None
