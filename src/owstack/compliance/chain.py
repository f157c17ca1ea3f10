"""The hash chain: canonical JSON, entry hashes and the signed payload of a checkpoint.

A record is a JSON object. Its `entry_hash` is SHA-256 over the previous record's hash (hex, ASCII)
followed by the canonical JSON of the record without `entry_hash`: keys sorted, no whitespace, UTF-8
(orjson with sorted keys). The first record of a stream links to `genesis_hash(stream)`.

A checkpoint record carries an Ed25519 signature over `signed_payload(...)`: the stream, the checkpoint's
own sequence number, the hash of the record before it (the head it vouches for), the checkpoint counter
(1, 2, 3 ... within the stream), its time and whether it seals the stream.
"""

from __future__ import annotations

import base64
import hashlib
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
    h = hashlib.sha256(prev_hash.encode("ascii"))
    h.update(canonical(body))
    return h.hexdigest()


def recompute(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "entry_hash"}
    return entry_hash(str(record.get("prev_hash", "")), body)


def signed_payload(*, stream: str, seq: int, head_hash: str, counter: int, time: str, sealed: bool) -> bytes:
    return canonical(
        {
            "format": FORMAT,
            "stream": stream,
            "seq": seq,
            "head_hash": head_hash,
            "counter": counter,
            "time": time,
            "sealed": sealed,
        }
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def iso(ts: float) -> str:
    """UTC ISO 8601 with microseconds and a `Z`, the time format of every record."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
