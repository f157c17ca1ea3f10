"""Key material for the audit log, kept apart from the log itself.

Three secrets, each a file in `audit.keys_directory` (created on first use: 32 random bytes as hex, mode
0600, in a 0700 directory) or an `env.NAME` reference (hex or base64 of 32 bytes):

- the pseudonym key: HMAC-SHA256 key for actor pseudonyms and for input/output/argument digests;
- the signing key: the Ed25519 seed that signs checkpoints and prune markers; its public half is
  published in `<audit.directory>/public-keys/<key id>.pub` so that `audit verify` needs no secret;
- the master key: wraps the per-tenant content keys (see `keystore.py`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from owstack.compliance.config import AuditSection
from owstack.errors import ConfigError

KEY_BYTES = 32
PUBLIC_KEYS = "public-keys"
#: the largest public key file read (one is 45 bytes: base64 of 32 and a newline)
PUBLIC_KEY_MAX = 4096


class AuditKeyError(Exception):
    """A key that cannot be read, created or decoded; the message names the field."""


@dataclass(frozen=True, slots=True)
class AuditPaths:
    directory: Path
    keys_directory: Path
    keystore: Path


def resolve_paths(section: AuditSection) -> AuditPaths:
    directory = Path(section.directory).expanduser().resolve()
    keys = Path(section.keys_directory).expanduser().resolve()
    if keys == directory or directory in keys.parents:
        raise ConfigError(
            f"audit.keys_directory: {keys} is inside audit.directory ({directory}); keep the keys apart from the log"
        )
    keystore = Path(section.keystore).expanduser().resolve() if section.keystore else keys / "content"
    if keystore == directory or directory in keystore.parents:
        raise ConfigError(f"audit.keystore: {keystore} is inside audit.directory ({directory})")
    return AuditPaths(directory=directory, keys_directory=keys, keystore=keystore)


def _decode(text: str, field: str) -> bytes:
    text = text.strip()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise AuditKeyError(f"{field}: not hex or base64") from None
    if len(raw) != KEY_BYTES:
        raise AuditKeyError(f"{field}: must be {KEY_BYTES} bytes (got {len(raw)})")
    return raw


def ensure_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def create_exclusive(path: Path, data: bytes) -> None:
    """Write `data` to `path` only if it does not exist; a racing creator's whole file wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def load_secret(reference: str | None, default_file: Path, *, field: str, create: bool = True) -> bytes:
    """Read a 32-byte secret from `env.NAME`, a path, or the default file (created when missing)."""
    if reference is not None and reference.startswith("env."):
        name = reference.removeprefix("env.")
        value = os.environ.get(name)
        if value is None:
            raise AuditKeyError(f"{field}: environment variable {name} is not set")
        return _decode(value, field)
    path = Path(reference).expanduser() if reference else default_file
    if not path.exists():
        if not create:
            raise AuditKeyError(f"{field}: key file {path} does not exist")
        try:
            ensure_private_dir(path.parent)
            create_exclusive(path, secrets.token_bytes(KEY_BYTES).hex().encode() + b"\n")
        except OSError as exc:
            raise AuditKeyError(f"{field}: cannot create key file {path}: {exc.strerror or exc}") from None
    try:
        if path.stat().st_mode & 0o077:
            raise AuditKeyError(f"{field}: key file {path} is readable by others; chmod 600 it")
        return _decode(path.read_text(encoding="ascii"), f"{field} ({path})")
    except OSError as exc:
        raise AuditKeyError(f"{field}: cannot read key file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise AuditKeyError(f"{field}: key file {path} is not hex text") from None


def public_key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


#: pseudonyms kept per key set (an actor's is asked for on every request; the set is cleared when full)
PSEUDONYM_CACHE = 4096


@dataclass(frozen=True, slots=True)
class AuditKeys:
    pseudonym: bytes
    pseudonym_id: str
    signing: Ed25519PrivateKey
    signing_id: str
    #: (kind, value) -> pseudonym, for the few actors and users that make most requests
    _pseudonyms: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)
    #: SHA-256 states after the key's inner and outer pads (RFC 2104), made once: an HMAC is then two copies
    #: and two updates, half the cost of `hmac.digest` (which sets the key up anew on every call)
    _pads: tuple[Any, Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pads", _hmac_pads(self.pseudonym))

    def hmac(self, data: bytes) -> str:
        """HMAC-SHA256 of `data` under the pseudonym key, hex (the same digest as `hmac.digest`)."""
        inner, outer = self._pads
        h = inner.copy()
        h.update(data)
        o = outer.copy()
        o.update(h.digest())
        return o.hexdigest()

    def pseudonym_of(self, kind: str, value: str) -> str:
        cache = self._pseudonyms
        name = cache.get((kind, value))
        if name is None:
            if len(cache) >= PSEUDONYM_CACHE:
                cache.clear()
            name = cache[(kind, value)] = "hmac:" + self.hmac(f"{kind}:{value}".encode())[:32]
        return name


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))


def load_keys(section: AuditSection, paths: AuditPaths, *, create: bool = True) -> AuditKeys:
    pseudonym = load_secret(
        section.pseudonym_key,
        paths.keys_directory / "pseudonym.key",
        field="audit.pseudonym_key",
        create=create,
    )
    seed = load_secret(
        section.signing_key, paths.keys_directory / "signing.key", field="audit.signing_key", create=create
    )
    signing = Ed25519PrivateKey.from_private_bytes(seed)
    pid = "hmac:" + hmac.new(pseudonym, b"owstack-key-id", hashlib.sha256).hexdigest()[:16]
    return AuditKeys(
        pseudonym=pseudonym, pseudonym_id=pid, signing=signing, signing_id=public_key_id(signing.public_key())
    )


def load_master_key(section: AuditSection, paths: AuditPaths, *, create: bool = True) -> bytes:
    return load_secret(section.master_key, paths.keys_directory / "master.key", field="audit.master_key", create=create)


def publish_public_key(directory: Path, keys: AuditKeys) -> None:
    """Store the checkpoint key's public half with the log (idempotent)."""
    folder = directory / PUBLIC_KEYS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (keys.signing_id.replace(":", "-") + ".pub")
    raw = keys.signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if not path.exists():
        create_exclusive(path, base64.b64encode(raw) + b"\n")
        os.chmod(path, 0o644)


def read_public_keys(directory: Path) -> dict[str, Ed25519PublicKey]:
    """Every public key stored with the log, by key id (the id is recomputed, never trusted from the name)."""
    out: dict[str, Ed25519PublicKey] = {}
    folder = directory / PUBLIC_KEYS
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.pub")):
        try:  # a regular file of a few bytes: a FIFO or /dev/zero put in its place must not hang the reader
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    continue
                text = fh.read(PUBLIC_KEY_MAX + 1)
            if len(text) > PUBLIC_KEY_MAX:
                continue
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip(), validate=True))
        except (ValueError, binascii.Error, OSError):
            continue
        out[public_key_id(key)] = key
    return out
