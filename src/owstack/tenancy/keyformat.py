"""The API key format, and how a key's secret is hashed and checked.

A key reads `ows-<key_id>-<secret>`:

    ows-3f9a0c1b2d4e-Xq2...(43 characters)

- `key_id`: 12 lowercase hex digits (48 random bits). Public: it names the key in `owstack keys list`,
  in logs and in the audit log, and it is how the gateway finds the key's row.
- `secret`: 32 random bytes from `secrets`, url-safe base64 without padding (43 characters of
  `A-Z a-z 0-9 - _`). Shown once, at creation; never stored.

The store keeps SHA-256(secret) and compares digests with `hmac.compare_digest`. No pepper and no slow
hash: both defend low-entropy passwords against offline guessing, and a 256-bit random secret cannot be
guessed from its hash at any speed. A pepper would add a second secret that every gateway process must
share and that, once lost or rotated, invalidates every key, in exchange for nothing measurable; a slow
hash (bcrypt, argon2) would cost milliseconds per request on the hot path. The prefix `ows-` lets secret
scanners recognise a leaked key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from owstack.errors import AuthenticationFailed

PREFIX = "ows"
KEY_ID_BYTES = 6
SECRET_BYTES = 32
KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_KEY = re.compile(r"^ows-([0-9a-f]{12})-([A-Za-z0-9_-]{43})$")
SHAPE = "ows-<12 hex digits>-<43 url-safe characters>"
#: the tenant of an admin key made without one (`keys create --admin`): no configured tenant has this name,
#: so the gateway refuses the key for model traffic and it opens the console only
ADMIN_TENANT = "console-admin"


@dataclass(frozen=True, slots=True)
class PresentedKey:
    key_id: str
    secret: str = ""

    def __repr__(self) -> str:  # never show the secret, not even in a traceback
        return f"PresentedKey(key_id={self.key_id!r})"


def new_key() -> tuple[str, str, bytes]:
    """A fresh key: (the full key to hand out once, its key id, the SHA-256 digest to store)."""
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return f"{PREFIX}-{key_id}-{secret}", key_id, hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def secret_matches(secret: str, stored_digest: bytes) -> bool:
    """Constant-time comparison of the presented secret's digest with the stored one."""
    return hmac.compare_digest(hash_secret(secret), stored_digest)


def parse(presented: str) -> PresentedKey:
    """Split a presented key; `AuthenticationFailed` (malformed) without echoing any of it."""
    match = _KEY.match(presented.strip()) if isinstance(presented, str) else None
    if match is None:
        raise AuthenticationFailed(f"malformed API key: an owstack key looks like {SHAPE}")
    return PresentedKey(key_id=match.group(1), secret=match.group(2))


def check_key_id(key_id: str) -> str:
    """Validate a key id typed by an operator (`keys revoke ID`); ValueError naming the shape."""
    key_id = key_id.strip().lower()
    if key_id.startswith(f"{PREFIX}-"):
        raise ValueError("pass the key id (12 hex digits, shown by `owstack keys list`), not the whole key")
    if not KEY_ID.match(key_id):
        raise ValueError(f"key id {key_id!r} is not 12 hex digits (see `owstack keys list`)")
    return key_id
