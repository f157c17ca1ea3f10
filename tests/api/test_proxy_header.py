"""The PROXY protocol header parser (api/proxy.py), on the spec's own examples and its edge cases; the
gateway's use of it is tested against a real server in tests/reliability/test_proxy_protocol.py."""

from __future__ import annotations

import struct

import pytest

from owstack.api.proxy import V2_SIGNATURE, BadHeader, Trusted, looks_like, parse


@pytest.mark.parametrize(
    ("header", "source"),
    [
        (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", ("192.168.0.1", 56324)),  # the spec's example
        (b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", ("2001:db8::1", 1)),
        (b"PROXY UNKNOWN\r\n", None),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None),
    ],
)
def test_v1(header: bytes, source: tuple[str, int] | None) -> None:
    assert parse(header + b"GET / HTTP/1.1\r\n") == (len(header), source)
    for cut in range(1, len(header)):  # a header arriving a byte at a time: more is needed, never an error
        assert parse(header[:cut]) is None


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def test_v2() -> None:
    inet = bytes([203, 0, 113, 7, 10, 0, 0, 1]) + struct.pack("!HH", 40000, 443)
    header = v2(1, 0x11, inet + b"\x04\x00\x01x")  # with a NOOP TLV after the addresses
    assert parse(header + b"GET") == (len(header), ("203.0.113.7", 40000))
    for cut in range(1, len(header)):
        assert parse(header[:cut]) is None
    inet6 = bytes(15) + b"\x05" + bytes(16) + struct.pack("!HH", 7, 443)
    assert parse(v2(1, 0x21, inet6)) == (52, ("::5", 7))
    mapped = bytes(10) + b"\xff\xff" + bytes([198, 51, 100, 1]) + bytes(16) + struct.pack("!HH", 7, 443)
    assert parse(v2(1, 0x21, mapped)) == (52, ("198.51.100.1", 7))
    assert parse(v2(0, 0x00, b"")) == (16, None)  # LOCAL
    assert parse(v2(0, 0x11, inet)) == (28, None)  # LOCAL with addresses: still the peer's own
    assert parse(v2(1, 0x31, bytes(216))) == (232, None)  # AF_UNIX: the connection's addresses


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 1.2.3.4\r\n",
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.\xff 5.6.7.8 1 2\r\n",
        b"PROXY " + b"1" * 120,
        b"PROXX",
        V2_SIGNATURE + bytes([0x10, 0x11, 0, 0]),
        V2_SIGNATURE + bytes([0x22, 0x11, 0, 0]),
        V2_SIGNATURE + bytes([0x21, 0x11, 0, 4]) + bytes(4),
        V2_SIGNATURE + bytes([0x21, 0x21, 0, 12]) + bytes(12),
        V2_SIGNATURE + bytes([0x21, 0x51, 0, 0]),
        b"\r\n\r\nGET",
        b"\x16\x03\x01\x02\x00",
    ],
)
def test_what_is_refused(data: bytes) -> None:
    with pytest.raises(BadHeader):
        parse(data)


def test_looks_like_and_trusted() -> None:
    assert looks_like(b"PROXY TCP4 ") and looks_like(V2_SIGNATURE) and not looks_like(b"POST / HTTP/1.1")
    trusted = Trusted(["10.0.0.0/8", "192.168.1.1", "fd00::/8", "172.16.5.4/12"])
    assert "10.2.3.4" in trusted and "::ffff:10.2.3.4" in trusted and "192.168.1.1" in trusted
    assert "fd12::1" in trusted and "172.20.0.1" in trusted
    assert "192.168.1.2" not in trusted and "127.0.0.1" not in trusted and "not-an-ip" not in trusted
    assert trusted.as_uvicorn() == ["10.0.0.0/8", "192.168.1.1/32", "fd00::/8", "172.16.0.0/12"]
    assert not Trusted([]) and "127.0.0.1" not in Trusted([])
