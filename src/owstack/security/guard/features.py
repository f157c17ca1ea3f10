"""Text to hashed features for the injection classifier: normalisation that undoes obfuscation, then
character and word n-grams hashed into a fixed number of buckets (numpy only, no vocabulary file).

Attackers obfuscate the words a model would read anyway, so the classifier reads the text the way the
model does and adds the views a keyword filter misses:

- `norm`: NFKC, case-folded, zero-width/tag/bidi characters removed, look-alike letters folded to
  Latin (`ѕуѕtеm` -> `system`), HTML entities and percent-encoding undone, base64 and hex runs that
  decode to text appended;
- `squeezed`: `norm` with leetspeak undone (`1gn0r3` -> `ignore`) and every non-letter removed, so
  `i g n o r e`, `i.g.n.o.r.e` and `ig-nore` all read `ignore`;
- markers for constructs that carry data out: a markdown image or link whose URL has a query or a
  placeholder, an HTML `img`, role tags and control tokens.

Each view's n-grams are hashed with a rolling polynomial over code points (vectorised), and a text is
the set of buckets it hits, L2-normalised: length matters little, repetition not at all.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
import urllib.parse
from functools import cache

import numpy as np

from owstack.security.data_files import load
from owstack.security.guard import structure

DIM_BITS = 18
DIM = 1 << DIM_BITS
#: weights of the structural signals (`structure`), after the DIM n-gram weights
STRUCT_DIM = 1024
_MASK = np.uint64(DIM - 1)
_MUL = np.uint64(0x9E3779B97F4A7C15)
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\U000e0000-\U000e007f]"
)
_B64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9_-]{24,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[ :]?){12,}\b")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_MD_IMAGE = re.compile(r"!\[[^\]]{0,200}\]\(\s*<?https?://[^\s)]{1,2000}", re.I)
_URL_DATA = re.compile(r"https?://[^\s)\"'>]*(?:\?[^\s)\"'>]*=|\{[^}]{0,40}\}|\$\{?\w+|\[[A-Z_ ]{3,}\]|%7B)", re.I)
_HTML_IMG = re.compile(r"<img\b[^>]{0,300}\bsrc\s*=", re.I)
_ROLE_TAG = re.compile(
    r"</?\s*(?:system|assistant|user|developer|instructions?|im_start|im_end)\b|\[/?(?:inst|system)\]", re.I
)
_WORD = re.compile(r"\w+", re.U)
_NON_LETTER = re.compile(r"[\W\d_]+")


@cache
def _confusables() -> dict[int, str]:
    return {ord(k): v for k, v in load("confusables")["map"].items()}


_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
        "+": "t",
        "8": "b",
        "9": "g",
    }
)


def _printable_ratio(text: str) -> float:
    return sum(ch.isprintable() for ch in text) / max(len(text), 1)


def _decoded(text: str) -> list[str]:
    """Text hidden in base64, hex or percent-encoding runs (only runs that decode to readable text)."""
    out: list[str] = []
    for m in _B64.finditer(text):
        run = m.group()
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4), altchars=b"-_" if ("-" in run or "_" in run) else None)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if (
            len(decoded) >= 8
            and _printable_ratio(decoded) > 0.95
            and sum(c.isalpha() for c in decoded) > len(decoded) / 2
        ):
            out.append(decoded)
    for m in _HEX.finditer(text):
        try:
            decoded = bytes.fromhex(re.sub(r"[ :]", "", m.group())).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if _printable_ratio(decoded) > 0.95:
            out.append(decoded)
    return out


def normalise(text: str) -> str:
    """The `norm` view (see the module docstring)."""
    if "&" in text:
        text = html.unescape(text)
    if len(_PCT.findall(text)) >= 2:
        text = urllib.parse.unquote(text)
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    extra = _decoded(text)  # before case-folding: base64 is case-sensitive
    text = text.casefold().translate(_confusables())
    if extra:
        text = text + " \n " + " \n ".join(e.casefold() for e in extra)
    return text


def squeeze(norm: str) -> str:
    """The `squeezed` view: leetspeak undone, only letters kept."""
    return _NON_LETTER.sub("", norm.translate(_LEET))


def markers(text: str) -> list[str]:
    out = []
    if _MD_IMAGE.search(text):
        out.append("md_image")
        if _URL_DATA.search(text):
            out.append("md_image_data")
    elif _URL_DATA.search(text):
        out.append("url_data")
    if _HTML_IMG.search(text):
        out.append("html_img")
    if _ROLE_TAG.search(text):
        out.append("role_tag")
    if "<|" in text or "[inst]" in text:
        out.append("control_token")
    return out


def _char_hashes(text: str, orders: tuple[int, ...], seed: int) -> np.ndarray:
    if not text:
        return np.empty(0, dtype=np.uint64)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    out = []
    h = np.zeros(len(codes), dtype=np.uint64) + np.uint64(seed)
    for n in range(1, max(orders) + 1):
        if n > len(codes):
            break
        # h[i] = hash of codes[i : i + n]
        h = (h[: len(codes) - n + 1] * np.uint64(1000003)) ^ codes[n - 1 :]
        if n in orders:
            out.append((h + np.uint64(n)) * _MUL)
    return np.concatenate(out) if out else np.empty(0, dtype=np.uint64)


def _word_hashes(norm: str, seed: int) -> np.ndarray:
    words = _WORD.findall(norm)[:4000]
    if not words:
        return np.empty(0, dtype=np.uint64)
    ids = np.array([zlib_crc(w) for w in words], dtype=np.uint64)
    uni = (ids + np.uint64(seed)) * _MUL
    bi = ((ids[:-1] * np.uint64(31)) ^ ids[1:] ^ np.uint64(seed * 7)) * _MUL if len(ids) > 1 else ids[:0]
    return np.concatenate([uni, bi])


def zlib_crc(word: str) -> int:
    return binascii.crc32(word.encode("utf-8"))


def buckets(text: str) -> np.ndarray:
    """The sorted unique n-gram feature buckets of a text."""
    return featurize(text)[0]


def featurize(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram buckets, structural feature indices) of a text: the n-grams are hashed into DIM buckets
    and L2-normalised by the classifier; the structural signals (`structure.signals` and the markers)
    index STRUCT_DIM more weights, each counted once, unnormalised."""
    norm = normalise(text)
    squeezed = squeeze(norm)
    found = markers(text)
    parts = [
        _char_hashes(" ".join(norm.split()), (3, 4, 5), 11),
        _char_hashes(squeezed, (4, 5, 6), 23),
        _word_hashes(norm, 37),
        np.array([zlib_crc("marker:" + m) for m in found], dtype=np.uint64) * _MUL,
    ]
    hashes = np.sort(((np.concatenate(parts) >> np.uint64(64 - DIM_BITS)) & _MASK).astype(np.int32))
    if len(hashes) >= 2:
        hashes = hashes[np.concatenate(([True], hashes[1:] != hashes[:-1]))]  # unique: sorting is 20x np.unique
    names = structure.signals(norm) + ["marker:" + m for m in found]
    struct = np.unique(np.array([zlib_crc(n) % STRUCT_DIM for n in names], dtype=np.int32))
    return hashes, struct
