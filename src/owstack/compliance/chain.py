"""The hash chain: canonical JSON, entry hashes and the signed payload of a checkpoint.

A record is a JSON object. Its `entry_hash` is SHA-256 over the previous record's hash (hex, ASCII)
followed by the canonical JSON of the record without `entry_hash`: keys sorted, no whitespace, UTF-8
(orjson with sorted keys). The first record of a stream links to `genesis_hash(stream)`.

A checkpoint record carries an Ed25519 signature over `signed_payload(...)`: the stream, the checkpoint's
own sequence number, the hash of the record before it (the head it vouches for), the checkpoint counter
(1, 2, 3 ... within the stream), its time and whether it seals the stream. A checkpoint may also carry
`covers`: the first 16 hex digits of the entry hash of every record since the previous checkpoint, in
order, with their digest inside the signature. A head alone only says that *something* before it
changed; the list lets `verify` name the first altered record of a chain rewritten after it (records
and hashes recomputed by someone without the signing key). Checkpoints without `covers` still verify.

Every line is written in canonical form, so a line whose bytes are not the canonical serialisation of
what it parses to (a duplicate key that parsers resolve differently, reordered keys, other escapes) has
been edited, even when its hash checks: `line_problem` says how.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from typing import Any

import orjson

FORMAT = "owstack-audit/1"
CHECKPOINT = "audit.checkpoint"
STREAM_OPENED = "audit.stream_opened"
STREAM_RESUMED = "audit.stream_resumed"


def canonical(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def genesis_hash(stream: str) -> str:
    return hashlib.sha256(f"{FORMAT}:genesis:{stream}".encode()).hexdigest()


def entry_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """`body` is the record without `entry_hash`."""
    return hash_line(prev_hash, canonical(body))


def hash_line(prev_hash: str, line: bytes) -> str:
    """The entry hash of a record whose canonical form, without `entry_hash`, is `line`."""
    h = hashlib.sha256(prev_hash.encode("ascii"))
    h.update(line)
    return h.hexdigest()


def recompute(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "entry_hash"}
    return entry_hash(str(record.get("prev_hash", "")), body)


COVER_DIGITS = 16


def signed_payload(
    *, stream: str, seq: int, head_hash: str, counter: int, time: str, sealed: bool, covers: str | None = None
) -> bytes:
    """What a checkpoint signs; `covers` is `covers_digest(...)` of its `covers` list, when it has one."""
    payload: dict[str, Any] = {
        "format": FORMAT,
        "stream": stream,
        "seq": seq,
        "head_hash": head_hash,
        "counter": counter,
        "time": time,
        "sealed": sealed,
    }
    if covers is not None:
        payload["covers"] = covers
    return canonical(payload)


def cover(entry_hash_hex: str) -> str:
    """A record's entry in a checkpoint's `covers` list."""
    return entry_hash_hex[:COVER_DIGITS]


def covers_digest(covers: list[str]) -> str:
    return hashlib.sha256(",".join(covers).encode("ascii")).hexdigest()


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def duplicate_key(raw: bytes) -> str | None:
    """The first key that appears twice in one object of a JSON text, else None."""
    try:
        json.loads(raw, object_pairs_hook=_reject_duplicates)
    except _DuplicateKey as exc:
        return exc.key
    except (ValueError, RecursionError):  # not JSON, or nested too deep to tell (and to be a record)
        return None
    return None


def line_problem(raw: bytes, record: dict[str, Any]) -> str | None:
    """Why a record line (without its newline) is not what the writer wrote, or None if it is canonical."""
    if raw == canonical(record):
        return None
    key = duplicate_key(raw)
    if key is not None:
        return f"the key {key!r} appears twice (parsers disagree on which value counts)"
    return "the line is not in canonical form (keys reordered, re-encoded or padded after it was written)"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def iso(ts: float) -> str:
    """UTC ISO 8601 with microseconds and a `Z`, the time format of every record.

    The same text as `datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")` (microseconds
    rounded half to even, as `fromtimestamp` rounds them), at a fraction of its cost: the date and time
    of day are formatted once per second and kept (a request's record has three times; the audit stage
    spent 3-5% of the event loop's samples in this function, docs/benchmarks.md)."""
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        whole += 1.0
        us -= 1_000_000
    elif us < 0:
        whole -= 1.0
        us += 1_000_000
    second = int(whole)
    cached = _second
    if cached[0] != second:
        cached = _second_text(second)
    return f"{cached[1]}.{us:06d}Z"


def _second_text(second: int) -> tuple[int, str]:
    global _second
    from datetime import UTC, datetime

    _second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return _second


#: the last second `iso` formatted and its text (one tuple, replaced whole: safe across threads)
_second: tuple[int, str] = (-(2**62), "")
