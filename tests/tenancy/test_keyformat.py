"""Key format, hashing and the constant-time comparison."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from owstack.errors import AuthenticationFailed
from owstack.tenancy import keyformat


def test_new_key_shape_and_digest() -> None:
    key, key_id, digest = keyformat.new_key()
    prefix, kid, secret = key.split("-", 2)
    assert prefix == "ows" and kid == key_id and len(key_id) == 12
    assert int(key_id, 16) >= 0 and len(secret) == 43
    assert digest == hashlib.sha256(secret.encode()).digest()
    assert secret not in repr(keyformat.parse(key))
    parsed = keyformat.parse(key)
    assert (parsed.key_id, parsed.secret) == (key_id, secret)


def test_keys_are_random() -> None:
    keys = {keyformat.new_key()[0] for _ in range(200)}
    ids = {k.split("-")[1] for k in keys}
    assert len(keys) == 200 and len(ids) == 200


def test_secret_with_dashes_parses() -> None:
    secret = "-" * 10 + "A" * 33
    parsed = keyformat.parse(f"ows-0123456789ab-{secret}")
    assert parsed.secret == secret and parsed.key_id == "0123456789ab"


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "sk-1234",
        "ows-0123456789ab",
        "ows-0123456789AB-" + "a" * 43,  # upper-case id
        "ows-0123456789a-" + "a" * 43,  # short id
        "ows-0123456789ab-" + "a" * 42,  # short secret
        "ows-0123456789ab-" + "a" * 44,  # long secret
        "ows-0123456789ab-" + "a" * 42 + "=",  # padding
        "ows-0123456789ab-" + "a" * 42 + "é",
        "xyz-0123456789ab-" + "a" * 43,
    ],
)
def test_malformed_keys_are_refused_without_echo(presented: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        keyformat.parse(presented)
    assert info.value.message.startswith("malformed API key")
    assert info.value.status == 401 and info.value.code == "invalid_api_key"
    if len(presented) > 10:
        assert presented[10:] not in info.value.message


def test_surrounding_whitespace_is_ignored() -> None:
    key, key_id, _ = keyformat.new_key()
    assert keyformat.parse(f"  {key}\n").key_id == key_id


def test_comparison_goes_through_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keyformat.hmac, "compare_digest", spy)
    key, _, digest = keyformat.new_key()
    secret = keyformat.parse(key).secret
    assert keyformat.secret_matches(secret, digest) is True
    assert keyformat.secret_matches("B" * 43, digest) is False
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("zz", "is not 12 hex digits"),
        ("0123456789abc", "is not 12 hex digits"),
        ("ows-0123456789ab-" + "a" * 43, "not the whole key"),
    ],
)
def test_check_key_id(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        keyformat.check_key_id(text)


def test_check_key_id_normalises() -> None:
    assert keyformat.check_key_id(" 0123456789AB ") == "0123456789ab"
