"""Benign real-world text from the operating system: manual pages and user-interface translations.

The embedding detector (`classifier.EmbeddingHead`) reads meaning, so it must see how much ordinary text
talks about systems, instructions, ignoring, overriding and forgetting without being an injection:

- `man_pages`: paragraphs of the installed manual pages (`/usr/share/man`, troff markup stripped), a
  large body of real English about systems, options that ignore or override things, and commands;
- `translations`: the messages of the installed gettext catalogues (`/usr/share/locale/*/LC_MESSAGES/
  *.mo`: GTK, GLib, PAM, PackageKit, ...), in English (the message ids) and in their translations,
  alone or a few together as user-interface text. The languages the evaluation holds out (pt, nl, sv,
  ro, cs) are skipped.

Both are split in halves by file (manual page name, catalogue domain) with the same CRC rule as the
package documentation (`external.package_docs`): one half for training, the other for the evaluation
(`bench/guard_eval.py`). What is read depends on the host's installed Debian packages, as the package
documentation depends on the installed Python packages.
"""

from __future__ import annotations

import gettext
import gzip
import random
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from owstack.security.guard.training.external import _DOC_WORDS
from owstack.security.guard.training.sample import Sample

MAN = Path("/usr/share/man")
LOCALE = Path("/usr/share/locale")
#: the evaluation's held-out languages (also absent from the training templates)
HELD_OUT_LANGUAGES = frozenset({"pt", "nl", "sv", "ro", "cs"})
_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", ":": "\u0308", ",": "\u0327", "~": "\u0303"}
_ESCAPES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # accented letters: \('e is e with an acute accent
    (
        re.compile(r"\\\(([':`^,~])([A-Za-z])"),
        lambda m: unicodedata.normalize("NFC", m.group(2) + _ACCENTS[m.group(1)]),
    ),
    (re.compile(r"\\\[u([0-9A-Fa-f]{4,5})\]"), lambda m: chr(int(m.group(1), 16))),
    (re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\\(aq"), "'"),
    (re.compile(r"\\\((?:em|en)"), "-"),
    (re.compile(r"\\\((?:lq|rq|dq)"), '"'),
    (re.compile(r"\\\(bu"), "*"),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),
    (re.compile(r"\\[-]"), "-"),
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\[&|^ %]"), ""),
    (re.compile(r"\\s[-+]?\d"), ""),
    (re.compile(r"\\\*\(?[A-Za-z]+"), ""),
]
_PARAGRAPH_MACRO = re.compile(r"^\.(?:PP|LP|P|TP|IP|HP|SH|SS|sp|br|RS|RE|in|nf|fi|TH|Sh|Ss|Pp|It|Bl|El|Nm)\b")
_TEXT_MACRO = re.compile(r"^\.(?:B|I|BI|BR|IB|IR|RB|RI|SM|SB|Nd|Ar|Fl|Cm|Op|Dq|Ql|Pa|Xr|Em|Sy)\s+")


def _half(name: str, test: bool) -> bool:
    return (zlib.crc32(name.lower().encode()) % 2 == 1) == test


def troff_text(source: str) -> str:
    """Readable text of a manual page: macros dropped or unwrapped, escapes resolved; paragraphs
    separated by blank lines."""
    out: list[str] = []
    for line in source.splitlines():
        if line.startswith(('.\\"', "'\\\"", '.\\"')) or line.startswith("...") or line.strip() == ".":
            continue
        if _PARAGRAPH_MACRO.match(line):
            out.append("")
            parts = line.split(None, 1)
            rest = parts[1] if len(parts) > 1 else ""
            if line.startswith((".SH", ".SS", ".Sh", ".Ss")) and rest:
                out.append(rest.strip('"'))
                out.append("")
            continue
        m = _TEXT_MACRO.match(line)
        if m:
            line = line[m.end() :].replace('"', "")
        elif line.startswith((".", "'")):
            continue
        for pattern, repl in _ESCAPES:
            line = pattern.sub(repl, line)
        out.append(line)
    return "\n".join(out)


def _man_language(path: Path) -> str:
    """`en` for /usr/share/man/man1/x.1.gz, `de` for /usr/share/man/de/man1/x.1.gz."""
    return "en" if path.parent.parent == MAN else re.split(r"[_@.]", path.parent.parent.name)[0]


def man_pages(
    *, test: bool, limit: int, keywords: bool = True, seed: int = 0, translated: bool = False
) -> Iterator[Sample]:
    """Paragraphs (120 to 1,500 characters) of one half of the English manual pages; with `keywords`, only
    those that talk about instructions, systems, ignoring, prompts...; with `translated`, the translated
    manual pages instead (`/usr/share/man/<lang>/`: French, German, Italian, Japanese, Ukrainian, Polish,
    Russian, Chinese, Spanish, Korean...; the held-out languages skipped; `keywords` ignored)."""
    if not MAN.is_dir():
        return
    pattern = "*/man[1-8]/*" if translated else "man[1-8]/*"
    pages = [
        p
        for p in sorted(MAN.glob(pattern))
        if p.is_file()
        and _half(p.name.split(".")[0], test)
        and (_man_language(p) != "en") == translated
        and _man_language(p) not in HELD_OUT_LANGUAGES
    ]
    random.Random(seed).shuffle(pages)
    count = 0
    for path in pages:
        try:
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            text = troff_text(raw.decode("utf-8"))
        except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile):
            continue
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            if 120 <= len(para) <= 1500 and (translated or not keywords or _DOC_WORDS.search(para)):
                lang = _man_language(path)
                category = "benign_manpage_translated" if translated else "benign_manpage"
                yield Sample(para, 0, category, f"man/{path.name.split('.')[0]}", lang)
                count += 1
                if count >= limit:
                    return


def _catalogues(test: bool) -> list[tuple[str, Path]]:
    if not LOCALE.is_dir():
        return []
    out = []
    for path in sorted(LOCALE.glob("*/LC_MESSAGES/*.mo")):
        lang = re.split(r"[_@.]", path.parts[-3])[0]
        domain = path.stem
        if lang in HELD_OUT_LANGUAGES or domain.startswith("iso_") or not _half(domain, test):
            continue
        out.append((lang, path))
    return out


def translations(*, test: bool, limit: int, seed: int = 0) -> Iterator[Sample]:
    """User-interface messages of one half of the gettext catalogues: English message ids and their
    translations (held-out languages skipped), one to four messages of one catalogue and language together."""
    rng = random.Random(seed)
    catalogues = _catalogues(test)
    rng.shuffle(catalogues)
    english_done: set[str] = set()
    count = 0
    for lang, path in catalogues:
        try:
            with path.open("rb") as fh:
                catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError):  # malformed headers
            continue
        pairs = [(str(k if isinstance(k, str) else k[0]), str(v)) for k, v in catalog.items() if k and v]
        pairs = [(k, v) for k, v in pairs if len(v) >= 12 and not k.startswith("Project-Id")]
        if not pairs:
            continue
        rng.shuffle(pairs)
        texts = [v for _, v in pairs[:12]]
        if path.stem not in english_done:
            english_done.add(path.stem)
            texts += [k for k, _ in pairs[12:24]]
        i = 0
        while i < len(texts):
            n = rng.randint(1, 4)
            text = rng.choice(["\n", " ", "\n\n"]).join(texts[i : i + n])
            i += n
            yield Sample(text, 0, "benign_ui_text", f"locale/{path.stem}", lang)
            count += 1
            if count >= limit:
                return
