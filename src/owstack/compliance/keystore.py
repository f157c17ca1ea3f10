"""Per-tenant content keys for captured prompts and completions (crypto-shredding).

A tenant with `capture_content: true` gets a random AES-256 key, stored wrapped (AES-256-GCM) under the
master key in `<keystore>/<sha256(tenant)[:24]>.json`. Captured content is encrypted under it and only
the ciphertext enters the audit chain. `destroy(tenant)` deletes the wrapped key: the content can no
longer be decrypted, and the chain, which hashes only ciphertext, still verifies. A later capture for the
same tenant gets a new key.

A running gateway checks the key file on each use (one `stat`), so an erasure done by the CLI takes effect
in every process at once.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from owstack.compliance import chain
from owstack.compliance.keys import create_exclusive, ensure_private_dir
from owstack.compliance.segments import read_json

ALG = "AES-256-GCM"


class ContentUnavailable(Exception):
    """The content cannot be decrypted: its key was destroyed (erased tenant) or never existed here."""


@dataclass(frozen=True, slots=True)
class _Cached:
    key_id: str
    key: bytes
    stamp: tuple[int, int]


def key_file(keystore: Path, tenant: str) -> Path:
    """Where a tenant's wrapped content key lives (readable without the master key: for erasure checks)."""
    return keystore / (hashlib.sha256(tenant.encode()).hexdigest()[:24] + ".json")


class ContentKeystore:
    def __init__(self, path: Path, master: bytes) -> None:
        self.path = path
        self._master = AESGCM(master)
        self._cache: dict[str, _Cached] = {}

    def _file(self, tenant: str) -> Path:
        return key_file(self.path, tenant)

    def _aad(self, tenant: str, key_id: str) -> bytes:
        return f"owstack-content-key:{tenant}:{key_id}".encode()

    def key_for(self, tenant: str) -> tuple[str, bytes]:
        """The tenant's current key (created on first use)."""
        path = self._file(tenant)
        try:
            st = path.stat()
        except FileNotFoundError:
            self._create(tenant, path)
            st = path.stat()
        stamp = (st.st_ino, st.st_mtime_ns)
        cached = self._cache.get(tenant)
        if cached is not None and cached.stamp == stamp:
            return cached.key_id, cached.key
        key_id, key = self._unwrap(tenant, path)
        self._cache[tenant] = _Cached(key_id, key, stamp)
        return key_id, key

    def _create(self, tenant: str, path: Path) -> None:
        ensure_private_dir(self.path)
        key_id = "content:" + secrets.token_hex(8)
        nonce = secrets.token_bytes(12)
        wrapped = self._master.encrypt(nonce, secrets.token_bytes(32), self._aad(tenant, key_id))
        entry = {
            "tenant": tenant,
            "key_id": key_id,
            "alg": ALG,
            "nonce": chain.b64(nonce),
            "wrapped": chain.b64(wrapped),
        }
        create_exclusive(path, chain.canonical(entry) + b"\n")

    def _unwrap(self, tenant: str, path: Path) -> tuple[str, bytes]:
        try:
            entry = read_json(path)
        except ValueError as exc:
            raise ContentUnavailable(f"keystore file {path.name}: {exc}") from None
        if entry is None:
            raise ContentUnavailable(f"no content key for tenant {tenant!r}")
        key_id = str(entry["key_id"])
        try:
            key = self._master.decrypt(
                chain.unb64(entry["nonce"]), chain.unb64(entry["wrapped"]), self._aad(tenant, key_id)
            )
        except (InvalidTag, KeyError, ValueError):
            raise ContentUnavailable(
                f"the content key of tenant {tenant!r} does not unwrap (wrong master key?)"
            ) from None
        return key_id, key

    def destroy(self, tenant: str) -> str | None:
        """Delete the tenant's key; returns its key id, or None when it had none."""
        path = self._file(tenant)
        try:
            entry = read_json(path)
        except ValueError:
            entry = {}
        if entry is None:
            return None
        path.unlink()
        self._cache.pop(tenant, None)
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return str(entry.get("key_id", "unknown"))

    def seal(self, tenant: str, event_id: str, content: dict[str, Any]) -> dict[str, Any]:
        key_id, key = self.key_for(tenant)
        nonce = secrets.token_bytes(12)
        ct = AESGCM(key).encrypt(nonce, chain.canonical(content), f"{event_id}:{tenant}".encode())
        return {"alg": ALG, "key_id": key_id, "nonce": chain.b64(nonce), "ciphertext": chain.b64(ct)}

    def open(self, tenant: str, event_id: str, sealed: dict[str, Any]) -> dict[str, Any]:
        """Decrypt captured content; `ContentUnavailable` once the tenant's key is destroyed."""
        path = self._file(tenant)
        if not path.exists():
            raise ContentUnavailable(f"the content key {sealed.get('key_id')} of tenant {tenant!r} was destroyed")
        key_id, key = self.key_for(tenant)
        if key_id != sealed.get("key_id"):
            raise ContentUnavailable(f"the content key {sealed.get('key_id')} of tenant {tenant!r} was destroyed")
        try:
            plain = AESGCM(key).decrypt(
                chain.unb64(sealed["nonce"]),
                chain.unb64(sealed["ciphertext"]),
                f"{event_id}:{tenant}".encode(),
            )
        except (InvalidTag, KeyError, ValueError):
            raise ContentUnavailable("the captured content does not decrypt (altered?)") from None
        import orjson

        value = orjson.loads(plain)
        return value if isinstance(value, dict) else {"content": value}
