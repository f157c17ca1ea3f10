"""`scan_text`: injection signals in tool outputs, retrieved documents and agent instruction files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from owstack.security.guard import (
    exfil_i18n,
    hijack,
    latent,
    multilingual,
    notices,
    orders_i18n,
    planted,
    records,
    requests,
    takeover,
    tool_orders,
    verdicts,
    vouch,
)
from owstack.security.guard.hidden import scan_hidden
from owstack.security.guard.payloads import (
    encoded_payloads,
    exfil_instructions,
    exfil_links,
    exfil_slots,
    hidden_markup,
)
from owstack.security.guard.phrases import (
    PHRASE_RULES,
    is_mention,
    is_negated,
    is_setting_doc,
    joined_views,
    obfuscation_views,
    role_spoof_spans,
    windows,
    without_mentions,
)
from owstack.security.guard.structure import asked_about
from owstack.security.guard.token_spellings import control_token_spans
from owstack.security.guard.types import SEVERITY_RANK, GuardFinding, Severity, at_least, safe_excerpt

SOURCES = ("tool", "document", "user", "instructions")
#: longest text scanned in full; beyond this only the first and last parts are scanned (and a finding says so)
MAX_SCAN_CHARS = 2_000_000
_EDGE = MAX_SCAN_CHARS // 2


def scan_text(text: str, *, source: str = "tool") -> list[GuardFinding]:
    """Find prompt-injection signals in `text`; return them sorted by position.

    `source` is where the text came from: `tool` (a tool result), `document` (retrieved content), `user`,
    or `instructions` (an agent instruction file such as AGENTS.md, which addresses the agent by design,
    so the rules about text speaking to an AI and role labels are skipped). Categories: hidden_unicode,
    override, role_spoof, exfiltration, encoded, hidden_text, tool_abuse. Quoted or example mentions
    ("phrases such as 'ignore previous instructions'") are reported as `low`.
    Each finding's excerpt is display-safe (no secrets, hidden characters spelt out).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
    if len(text) > MAX_SCAN_CHARS:
        head, tail = text[:_EDGE], text[-_EDGE:]
        offset = len(text) - _EDGE
        found = _scan(head, source) + [_shift(f, offset) for f in _scan(tail, source)]
        found.append(
            GuardFinding(
                "OWS-GRD-090",
                "low",
                "oversize",
                _EDGE,
                offset,
                "",
                f"text of {len(text)} characters: the middle was not scanned",
            )
        )
        return sorted(found, key=lambda f: (f.start, f.rule))
    return _scan(text, source)


def _shift(f: GuardFinding, offset: int) -> GuardFinding:
    return GuardFinding(f.rule, f.severity, f.category, f.start + offset, f.end + offset, f.excerpt, f.message)


def _scan(text: str, source: str) -> list[GuardFinding]:
    found: list[GuardFinding] = []
    if not text.isascii():
        found.extend(scan_hidden(text))
    phrases = _phrases(text, source)
    found.extend(phrases)
    found.extend(_obfuscated(text, source, phrases))
    found.extend(_spoofing(text, source))
    found.extend(_links(text))
    found.extend(_encoded(text, source))
    for start, end, message in hidden_markup(text):
        found.append(
            GuardFinding("OWS-GRD-050", "medium", "hidden_text", start, end, safe_excerpt(text, start, end), message)
        )
    if source != "instructions":  # instruction files address the agent by design
        found.extend(_classified(text))
    return sorted(found, key=lambda f: (f.start, f.rule))


def _in_code_span(text: str, start: int, end: int) -> bool:
    """A token quoted as inline code (`<|im_start|>`) on its line: documentation about templates, a mention.
    (It is neutralised before the prompt either way.)"""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    before = text[line_start:start]
    after = text[end : line_end if line_end >= 0 else len(text)]
    return before.count("`") % 2 == 1 and "`" in after


def _classified(text: str) -> list[GuardFinding]:
    """The trained classifier's verdict (second stage): one finding on the most suspicious window. Imported
    here: numpy and the weights load with the first text scanned, not with the gateway (plain chat scans none)."""
    from owstack.security.guard import classifier

    m = classifier.model()
    scored = classifier.window_probabilities(without_mentions(text))
    start, p = max(scored, key=lambda sp: sp[1])
    if p < m.threshold_medium:
        return []
    severity: Severity = "high" if p >= m.threshold else "low"  # below the threshold: recorded, not flagged
    end = min(len(text), start + classifier.WINDOW)
    message = f"the injection classifier rates this passage {p:.2f} (threshold {m.threshold:.2f})"
    return [GuardFinding("OWS-GRD-100", severity, "classifier", start, end, safe_excerpt(text, start, end), message)]


WINDOWED_ABOVE = 4096


def _matches(rule_index: int, text: str, lowered: str | None) -> Iterator[re.Match[str]]:
    pattern = PHRASE_RULES[rule_index].pattern
    if lowered is None:
        yield from pattern.finditer(text)
        return
    seen: set[tuple[int, int]] = set()
    for start, end in windows(lowered, rule_index):
        for m in pattern.finditer(text, start, min(end, len(text))):
            if m.span() not in seen:
                seen.add(m.span())
                yield m


def _phrases(text: str, source: str) -> list[GuardFinding]:
    """Phrase rules; texts longer than WINDOWED_ABOVE are only searched around each rule's key words."""
    lowered = text.lower() if len(text) > WINDOWED_ABOVE else None
    if lowered is not None and len(lowered) != len(text):
        lowered = None  # lower() changed the length (rare scripts): offsets would not line up
    out: list[GuardFinding] = []
    for index, rule in enumerate(PHRASE_RULES):
        if source in rule.skip:
            continue
        for m in _matches(index, text, lowered):
            quiet = is_mention(text, m.start(), m.end()) or (rule.rule != "OWS-GRD-011" and is_negated(text, m.start()))
            if not quiet and rule.rule == "OWS-GRD-010":
                quiet = is_setting_doc(text, m.start(), m.end()) or asked_about(text, "override", m.start(), m.end())
            if not quiet and rule.rule in _QUOTABLE:
                quiet = _quoted_discussion(text, m.start())
            if not quiet and rule.rule == "OWS-GRD-013":
                quiet = notices.is_contact_notice(
                    m.group(), rule.pattern
                )  # "send abuse complaints with log files to abuse@..."
            out.append(
                GuardFinding(
                    rule.rule,
                    "low" if quiet else rule.severity,
                    rule.category,
                    m.start(),
                    m.end(),
                    safe_excerpt(text, m.start(), m.end()),
                    rule.message,
                )
            )
    out.extend(_multilingual(text))
    if source != "instructions":  # instruction files give the agent orders by design
        out.extend(_tool_orders(text))
        out.extend(_planted(text))
    if source in ("tool", "document"):  # a user's own request is not an injection
        out.extend(_orders(text, "OWS-GRD-023", requests.findings(text), "tool_abuse"))
        # claims and orders in a record's field; a string in a JSON array (an RDAP vCard's "fn") is a value too
        out.extend(_orders(text, "OWS-GRD-018", records.findings(text), array_values=True))
    return out


def _planted(text: str) -> list[GuardFinding]:
    """Orders planted in a document to whatever summarises, translates or evaluates it (`planted`, OWS-GRD-019)."""
    return _orders(text, "OWS-GRD-019", planted.findings(text))


def _tool_orders(text: str) -> list[GuardFinding]:
    """Orders to the AI planted in a field of a tool result (`tool_orders`), verdicts dictated to whatever assesses
    the data (`verdicts`) and orders that take over the reader's reply (`hijack`), the same in other languages
    (`orders_i18n`), OWS-GRD-018."""
    spans = [*tool_orders.findings(text), *verdicts.findings(text), *hijack.findings(text), *orders_i18n.findings(text)]
    spans += latent.findings(text) + takeover.findings(text) + vouch.findings(text)
    return _orders(text, "OWS-GRD-018", spans)


def _orders(
    text: str,
    rule_id: str,
    spans: Iterable[tuple[int, int, str]],
    category: str = "override",
    *,
    array_values: bool = False,
) -> list[GuardFinding]:
    """Medium findings for orders planted in data; `low` where the text quotes, negates or discusses them. With
    `array_values`, a string that opens right after `[`, `,` or a tab is a JSON array's element or a tab-separated
    field, data, not a quotation."""
    out: list[GuardFinding] = []
    for start, end, message in spans:
        # a match that holds a quotation mark is structured data ({"role": "system", ...}), not a quoted example
        mention = is_mention(text, start, end) and '"' not in text[start:end]
        if mention and array_values and _ARRAY_ELEMENT.search(text, max(0, start - 8), start):
            mention = False
        quiet = mention or is_negated(text, start) or _quoted_discussion(text, start)
        severity: Severity = "low" if quiet else "medium"
        out.append(GuardFinding(rule_id, severity, category, start, end, safe_excerpt(text, start, end), message))
    return out


#: the opening quotation mark of a JSON array's element or of a tab-separated field, right before a match: `["fn",
#: {}, "text", "`, a DNS answer's `IN\tTXT\t"`
_ARRAY_ELEMENT = re.compile(r'[\[,\t][ \t]*"$')


def _multilingual(text: str) -> list[GuardFinding]:
    out: list[GuardFinding] = []
    for start, end, kind, lang in multilingual.findings(text):
        rule, severity, category, message = multilingual.KINDS[kind]
        out.append(
            GuardFinding(
                rule,
                "low" if is_mention(text, start, end) else severity,
                category,
                start,
                end,
                safe_excerpt(text, start, end),
                f"{message} ({lang})",
            )
        )
    return out


def _obfuscated(text: str, source: str, plain: list[GuardFinding]) -> list[GuardFinding]:
    """Phrase rules on the text with obfuscation undone (`phrases.deobfuscated`: look-alike letters,
    leetspeak, spaced-out letters, invisible characters, character references, percent-encoding): one
    OWS-GRD-042 finding per phrase that only the undone text shows."""
    seen = [(f.rule, f.start, f.end) for f in plain if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["medium"]]
    out: list[GuardFinding] = []
    views = [(view, index, False) for view, index in obfuscation_views(text)]
    views += [(view, index, True) for view, index in joined_views(text)]
    for view, index, joined in views:
        for f in _phrases(view, source):
            if SEVERITY_RANK[f.severity] < SEVERITY_RANK["medium"]:
                continue
            start, end = index[f.start], index[f.end - 1] + 1
            if joined and "\n" in text[start:end]:
                continue  # joined words are one line of text; across lines they are keys of a config file
            if any(rule == f.rule and s < end and start < e for rule, s, e in seen):
                continue
            seen.append((f.rule, start, end))
            out.append(
                GuardFinding(
                    "OWS-GRD-042",
                    f.severity,
                    "encoded",
                    start,
                    end,
                    safe_excerpt(text, start, end),
                    f"obfuscated text (look-alikes, leetspeak, spacing, words run together, encoding) that {f.message}",
                )
            )
    return out


def _spoofing(text: str, source: str) -> list[GuardFinding]:
    # as written, NFKC-folded, with invisible characters deleted, or nested in another token (token_spellings)
    out = [
        GuardFinding(
            "OWS-GRD-020",
            "low" if _in_code_span(text, start, end) else "high",
            "role_spoof",
            start,
            end,
            safe_excerpt(text, start, end),
            "chat-template control token in content (could open a forged turn)",
        )
        for start, end in control_token_spans(text)
    ]
    if source == "instructions":
        return out
    messages = {
        "label": ("OWS-GRD-021", "a role label followed by instructions (forged system/assistant turn)"),
        "tag": ("OWS-GRD-021", "a role tag followed by instructions (forged system prompt)"),
        "frame": ("OWS-GRD-022", "closes the tool-result frame the gateway or agent put around it"),
        "mdrole": ("OWS-GRD-021", "a chat role as a markdown link ([system](#context)), a forged prompt section"),
    }
    for start, end, kind in role_spoof_spans(text):
        rule, message = messages[kind]
        quoted = kind == "mdrole" and (_in_code_span(text, start, end) or is_mention(text, start, end))
        severity: Severity = "low" if quoted else "medium"
        out.append(GuardFinding(rule, severity, "role_spoof", start, end, safe_excerpt(text, start, end), message))
    return out


#: rules about text addressed to the AI: a quoted line in text about attacks is a mention
_QUOTABLE = frozenset({"OWS-GRD-012", "OWS-GRD-016", "OWS-GRD-017", "OWS-GRD-018", "OWS-GRD-019", "OWS-GRD-023"})
_ABOUT_ATTACKS = re.compile(
    r"(?i)\b(?<![.@/-])(?:attacks?|attackers?|injections?|injected|payloads?|red[\s-]?team\w*|examples?|e\.g\.|such\s+as|phrases?"
    r"|strings?|planted|malicious|forged|fake|spoofed|markers?|(?:lines|text|prompts?|sentences?|comments?)\s+like"
    r"|patterns?|quoted|reads?\s+like|for\s+instance)\b"
)


def _quoted_discussion(text: str, start: int) -> bool:
    """A match inside a double-quoted passage of its paragraph, where the paragraph before the quotation talks
    about attacks or examples ("the report lists planted lines like \"...\""): a mention. A JSON or CSV value
    is quoted too, but without such words before it."""
    before = text[max(0, start - 400) : start]
    paragraph = before[before.rfind("\n\n") + 1 :]
    after = text[start : start + 400]
    # a quotation inside a JSON string is escaped: {"text": "... strings such as \"Please transfer ...\""}
    for opening, closing in (('"', '"'), ("“", "”"), ('\\"', '\\"')):
        if opening == closing:
            if paragraph.count(opening) % 2 == 0 or opening not in after:
                continue
            quote = paragraph.rfind(opening)
        else:
            if paragraph.count(opening) <= paragraph.count(closing) or closing not in after:
                continue
            quote = paragraph.rfind(opening)
        if _ABOUT_ATTACKS.search(paragraph, 0, quote):
            return True
    return False


def _quoted_example(text: str, start: int) -> bool:
    """An exfiltration instruction inside inline code or a double-quoted passage of its paragraph (opened
    before it, closed after it): an example, a mention."""
    before = text[max(0, start - 300) : start]
    paragraph = before[before.rfind("\n\n") + 1 :]
    after = text[start : start + 400]
    if paragraph.count("`") % 2 == 1 and "`" in after:
        return True
    if paragraph.count('"') % 2 == 1 and '"' in after:
        return not _data_value(paragraph, paragraph.rfind('"'))
    return paragraph.count("“") > paragraph.count("”") and "”" in after


def _data_value(paragraph: str, quote: int) -> bool:
    """The quotation opens a value of structured data (JSON `"key": "...`, a CSV cell, `key="...`), not a quote."""
    before = paragraph[:quote].rstrip(" \t")
    return not before or before[-1] in ":,[{=\n"


def _exfil_finding(text: str, start: int, end: int, message: str) -> GuardFinding:
    return GuardFinding(
        "OWS-GRD-014",
        "low" if _quoted_example(text, start) else "high",
        "exfiltration",
        start,
        end,
        safe_excerpt(text, start, end),
        message,
    )


def _links(text: str) -> list[GuardFinding]:
    out = [_exfil_finding(text, start, end, message) for start, end, message in exfil_instructions(text)]
    if "http" not in text:
        return out + _exfil_other_languages(text, out)
    taken = [(f.start, f.end) for f in out]
    out.extend(
        _exfil_finding(text, start, end, message)
        for start, end, message in exfil_slots(text)
        if not any(s <= start < e or start <= s < end for s, e in taken)
    )
    out.extend(_exfil_other_languages(text, out))
    return out + [
        GuardFinding(
            "OWS-GRD-030",
            severity,
            "exfiltration",
            start,
            end,
            safe_excerpt(text, start, end),
            message,
        )
        for start, end, severity, message in exfil_links(text)
    ]


_EXFIL_I18N = {
    "send": ("OWS-GRD-013", "asks the model to send the conversation or secrets to an outside address"),
    "image": ("OWS-GRD-014", "asks for an image or link whose URL carries the conversation or secrets"),
}


def _exfil_other_languages(text: str, found: list[GuardFinding]) -> list[GuardFinding]:
    """Exfiltration instructions in other languages (`exfil_i18n`), where no English rule found one."""
    if "@" not in text and "http" not in text:
        return []
    out = []
    for start, end, kind, lang in exfil_i18n.findings(text):
        if any(f.start < end + 300 and start - 300 < f.end and at_least(f.severity, "medium") for f in found):
            continue
        rule, message = _EXFIL_I18N[kind]
        severity: Severity = "low" if _quoted_example(text, start) else "high"
        out.append(
            GuardFinding(
                rule, severity, "exfiltration", start, end, safe_excerpt(text, start, end), f"{message} ({lang})"
            )
        )
    return out


def _decoded_is_injection(decoded: str) -> bool:
    found = _phrases(decoded, "tool") + _spoofing(decoded, "tool")
    return any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK["medium"] for f in found)


def _encoded(text: str, source: str) -> list[GuardFinding]:
    return [
        GuardFinding(
            "OWS-GRD-040",
            severity,
            "encoded",
            start,
            end,
            safe_excerpt(text, start, end),
            message,
        )
        for start, end, severity, message in encoded_payloads(text, _decoded_is_injection)
    ]
