"""Tests for the PROXY protocol header parser and encoders (trio_tcp.framing._proxy)."""

from __future__ import annotations

import ast
import ipaddress
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_tcp._exceptions import LocalProtocolError, ProxyProtocolError
from trio_tcp.framing import _proxy
from trio_tcp.framing._proxy import (
    MAX_PROXY_HEADER_SIZE,
    ProxyHeader,
    encode_proxy_header_v1,
    encode_proxy_header_v2,
    parse_proxy_header,
)

SIG = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
SPEC_V4 = (("192.168.0.1", 56324), ("192.168.0.11", 443))
SPEC_V6 = (("2001:db8::1", 56324), ("2001:db8::2", 443))
V2_ADDRESSES_V4 = b"\xc0\xa8\x00\x01\xc0\xa8\x00\x0b\xdc\x04\x01\xbb"
V2_ADDRESSES_V6 = (
    b"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
    b"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
    b"\xdc\x04\x01\xbb"
)
V2_ADDRESSES_UNIX = b"/var/run/src.sock".ljust(108, b"\x00") + b"/run/dst.sock".ljust(108, b"\x00")
V2_TLVS = b"\x01\x00\x02h2\x02\x00\x0bexample.com\x04\x00\x00"
TLVS = ((0x01, b"h2"), (0x02, b"example.com"), (0x04, b""))
FFFF6 = ":".join(["ffff"] * 8)

# (name, bytes as the spec lays them out, the header they carry)
VALID: list[tuple[str, bytes, ProxyHeader]] = [
    (
        "v1-tcp4-spec-example",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        ProxyHeader(1, "PROXY", "TCP4", *SPEC_V4),
    ),
    (
        "v1-tcp6",
        b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n",
        ProxyHeader(1, "PROXY", "TCP6", *SPEC_V6),
    ),
    (
        "v1-tcp6-longest-104-bytes",
        f"PROXY TCP6 {FFFF6} {FFFF6} 65535 65535\r\n".encode(),
        ProxyHeader(1, "PROXY", "TCP6", (FFFF6, 65535), (FFFF6, 65535)),
    ),
    (
        "v1-tcp4-zero-port",
        b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
        ProxyHeader(1, "PROXY", "TCP4", ("0.0.0.0", 0), ("255.255.255.255", 65535)),
    ),
    ("v1-unknown", b"PROXY UNKNOWN\r\n", ProxyHeader(1, "PROXY", "UNKNOWN", None, None)),
    (
        "v2-inet",
        SIG + b"\x21\x11\x00\x0c" + V2_ADDRESSES_V4,
        ProxyHeader(2, "PROXY", "TCP4", *SPEC_V4),
    ),
    (
        "v2-inet6",
        SIG + b"\x21\x21\x00\x24" + V2_ADDRESSES_V6,
        ProxyHeader(2, "PROXY", "TCP6", *SPEC_V6),
    ),
    (
        "v2-unix",
        SIG + b"\x21\x31\x00\xd8" + V2_ADDRESSES_UNIX,
        ProxyHeader(2, "PROXY", "UNIX", "/var/run/src.sock", "/run/dst.sock"),
    ),
    ("v2-local", SIG + b"\x20\x00\x00\x00", ProxyHeader(2, "LOCAL", "UNKNOWN", None, None)),
    (
        "v2-inet-with-tlvs",
        SIG + b"\x21\x11\x00\x22" + V2_ADDRESSES_V4 + V2_TLVS,
        ProxyHeader(2, "PROXY", "TCP4", *SPEC_V4, tlvs=TLVS),
    ),
    (
        "v2-local-with-tlvs",
        SIG + b"\x20\x00\x00\x16" + V2_TLVS,
        ProxyHeader(2, "LOCAL", "UNKNOWN", None, None, tlvs=TLVS),
    ),
    (
        "v2-proxy-unspec-with-tlvs",
        SIG + b"\x21\x00\x00\x16" + V2_TLVS,
        ProxyHeader(2, "PROXY", "UNKNOWN", None, None, tlvs=TLVS),
    ),
]
VALID_IDS = [name for name, _, _ in VALID]
VALID_CASES = [(raw, header) for _, raw, header in VALID]

# Valid headers the encoders never produce (they write the short or canonical form).
PARSE_ONLY: list[tuple[str, bytes, ProxyHeader, int]] = [
    (
        "v1-unknown-worst-case-107-bytes",
        f"PROXY UNKNOWN {FFFF6} {FFFF6} 65535 65535\r\n".encode(),
        ProxyHeader(1, "PROXY", "UNKNOWN", None, None),
        107,
    ),
    (
        "v1-unknown-anything-before-crlf",
        b"PROXY UNKNOWN  junk\tthat is ignored\r\n",
        ProxyHeader(1, "PROXY", "UNKNOWN", None, None),
        37,
    ),
    (
        "v1-tcp6-uppercase-and-uncompressed",
        b"PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::ffff:192.0.2.1 1 2\r\n",
        # ipaddress writes IPv4-mapped addresses differently before and after Python 3.13.
        ProxyHeader(
            1,
            "PROXY",
            "TCP6",
            ("2001:db8::1", 1),
            (str(ipaddress.ip_address("::ffff:c000:201")), 2),
        ),
        54,
    ),
    (
        "v2-local-ignores-family-and-addresses",
        SIG + b"\x20\x11\x00\x0c" + V2_ADDRESSES_V4,
        ProxyHeader(2, "LOCAL", "UNKNOWN", None, None),
        28,
    ),
    (
        "v2-local-inet-with-empty-block",
        SIG + b"\x20\x11\x00\x00",
        ProxyHeader(2, "LOCAL", "UNKNOWN", None, None),
        16,
    ),
    (
        "v2-local-dgram-is-ignored",
        SIG + b"\x20\x12\x00\x03abc",
        ProxyHeader(2, "LOCAL", "UNKNOWN", None, None),
        19,
    ),
    (
        "v2-unix-unnamed-and-abstract",
        SIG + b"\x21\x31\x00\xd8" + b"\x00" * 108 + b"\x00abstract".ljust(108, b"\x00"),
        ProxyHeader(2, "PROXY", "UNIX", "", "\x00abstract"),
        232,
    ),
    (
        "v2-unix-bytes-after-nul-ignored-and-non-utf8",
        SIG
        + b"\x21\x31\x00\xd8"
        + (b"/tmp/\xff\x00garbage").ljust(108, b"x")
        + b"/d\x00".ljust(108, b"y"),
        ProxyHeader(2, "PROXY", "UNIX", "/tmp/\udcff", "/d"),
        232,
    ),
]

TRAILING = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


@pytest.mark.parametrize(("raw", "expected"), VALID_CASES, ids=VALID_IDS)
def test_parse_whole(raw: bytes, expected: ProxyHeader) -> None:
    """A complete header parses to the expected fields and uses exactly its own bytes."""
    assert parse_proxy_header(raw) == (expected, len(raw))


@pytest.mark.parametrize(
    ("raw", "expected", "size"), [case[1:] for case in PARSE_ONLY], ids=[c[0] for c in PARSE_ONLY]
)
def test_parse_forms_the_encoders_do_not_write(
    raw: bytes, expected: ProxyHeader, size: int
) -> None:
    """Valid spellings the encoders never produce parse too, byte by byte and with trailing
    data."""
    assert len(raw) == size
    assert parse_proxy_header(raw) == (expected, size)
    assert parse_proxy_header(raw + TRAILING) == (expected, size)
    for end in range(size):
        assert parse_proxy_header(raw[:end]) is None


@pytest.mark.parametrize(("raw", "expected"), VALID_CASES, ids=VALID_IDS)
def test_encoder_writes_the_spec_bytes(raw: bytes, expected: ProxyHeader) -> None:
    """The encoders write exactly the hand-written bytes, so they cannot hide a parser bug."""
    if expected.version == 1:
        assert expected.family != "UNIX"
        assert not isinstance(expected.source, str)
        assert not isinstance(expected.destination, str)
        encoded = encode_proxy_header_v1(expected.family, expected.source, expected.destination)
    else:
        encoded = encode_proxy_header_v2(
            expected.command,
            expected.family,
            expected.source,
            expected.destination,
            expected.tlvs,
        )
    assert encoded == raw


@pytest.mark.parametrize(("raw", "expected"), VALID_CASES, ids=VALID_IDS)
def test_parse_one_byte_at_a_time(raw: bytes, expected: ProxyHeader) -> None:
    """Every proper prefix needs more bytes (None); the last byte completes the header."""
    buffer = bytearray()
    for byte in raw[:-1]:
        buffer.append(byte)
        assert parse_proxy_header(buffer) is None
    buffer.append(raw[-1])
    assert parse_proxy_header(buffer) == (expected, len(raw))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("raw", "expected"), VALID_CASES, ids=VALID_IDS)
def test_parse_random_chunks(raw: bytes, expected: ProxyHeader, seed: int) -> None:
    """Chunks of random size (fixed seed) give None until the header is in, then the header."""
    rng = random.Random(seed)
    stream = raw + TRAILING
    buffer = bytearray()
    position = 0
    while position < len(stream):
        chunk = stream[position : position + rng.randint(1, 20)]
        position += len(chunk)
        buffer += chunk
        result = parse_proxy_header(memoryview(buffer))
        if len(buffer) < len(raw):
            assert result is None
        else:
            assert result == (expected, len(raw))


@pytest.mark.parametrize(("raw", "expected"), VALID_CASES, ids=VALID_IDS)
@pytest.mark.parametrize(
    "trailing",
    [TRAILING, b"\r\n", b"\x00", SIG + b"\x21\x11", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"],
    ids=["http", "crlf", "nul", "v2-start", "another-v1"],
)
def test_parse_leaves_trailing_data(raw: bytes, expected: ProxyHeader, trailing: bytes) -> None:
    """Application bytes after the header are not consumed, whatever they look like."""
    assert parse_proxy_header(raw + trailing) == (expected, len(raw))


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_parse_accepts_any_bytes_like(
    kind: type[bytes] | type[bytearray] | type[memoryview],
) -> None:
    """bytes, bytearray and memoryview inputs all parse the same."""
    raw, expected = VALID_CASES[0]
    assert parse_proxy_header(kind(raw + TRAILING)) == (expected, len(raw))
    raw, expected = VALID_CASES[-3]
    assert parse_proxy_header(kind(raw + TRAILING)) == (expected, len(raw))


def test_parse_empty_needs_more() -> None:
    """No bytes yet means no verdict yet."""
    assert parse_proxy_header(b"") is None


def v2(command_byte: int, family_byte: int, block: bytes, length: int | None = None) -> bytes:
    """A v2 header with the given bytes 13-14, address block and (default: true) length."""
    size = len(block) if length is None else length
    return SIG + bytes([command_byte, family_byte]) + size.to_bytes(2, "big") + block


MALFORMED: list[tuple[str, bytes, str]] = [
    ("http-request", b"GET / HTTP/1.1\r\n", "neither the v1 nor the v2 signature"),
    ("tls-client-hello", b"\x16\x03\x01\x02\x00\x01", "neither"),
    ("lowercase-proxy", b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "neither"),
    ("proxy-then-no-space", b"PROXYTCP4", 'start with "PROXY "'),
    ("proxy-line-too-short", b"PROXY\r\n", "ends before its protocol family"),
    ("no-family", b"PROXY \r\n", "is not TCP4, TCP6 or UNKNOWN"),
    ("family-tcp5", b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "is not TCP4, TCP6 or UNKNOWN"),
    ("family-udp4", b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "is not TCP4, TCP6 or UNKNOWN"),
    ("unknown-glued", b"PROXY UNKNOWNX\r\n", "is not TCP4, TCP6 or UNKNOWN"),
    ("double-space", b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "is not TCP4"),
    ("double-space-later", b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "malformed"),
    ("tab", b"PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", "is not TCP4"),
    ("missing-port", b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "exactly 4 fields"),
    ("extra-field", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "exactly 4 fields"),
    ("trailing-space", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "exactly 4 fields"),
    ("family-only", b"PROXY TCP4\r\n", "exactly 4 fields"),
    ("bare-lf", b"PROXY UNKNOWN\n", "bare LF"),
    ("bare-cr", b"PROXY UNKNOWN\rX", "CR not followed by LF"),
    ("lf-before-crlf", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r\n", "bare LF"),
    ("ipv4-octet-256", b"PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n", "malformed"),
    ("ipv4-three-octets", b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "malformed"),
    ("ipv4-five-octets", b"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "malformed"),
    ("ipv4-leading-zero", b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "1.2.3.4"),
    ("ipv4-leading-zero-last", b"PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n", "5.6.7.08"),
    ("ipv4-hex", b"PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n", "malformed"),
    ("ipv4-empty-octet", b"PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", "malformed"),
    ("ipv4-too-long", b"PROXY TCP4 1111111111111111", "malformed"),
    ("ipv6-bad-hex", b"PROXY TCP6 2001:db8::g ::1 1 2\r\n", "malformed"),
    ("ipv6-two-double-colons", b"PROXY TCP6 1::2::3 ::1 1 2\r\n", "malformed"),
    ("ipv6-scope", b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "malformed"),
    ("ipv6-too-few-groups", b"PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", "malformed"),
    ("tcp4-with-ipv6", b"PROXY TCP4 ::1 ::1 1 2\r\n", "TCP4 line carries an IPv6 address"),
    ("tcp6-with-ipv4", b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "TCP6 line carries an IPv4"),
    ("tcp4-dst-ipv6", b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n", "TCP4 line carries an IPv6"),
    ("port-65536", b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "out of range"),
    ("port-99999", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", "out of range"),
    ("port-six-digits", b"PROXY TCP4 1.2.3.4 5.6.7.8 100000", "out of range"),
    ("port-leading-zero", b"PROXY TCP4 1.2.3.4 5.6.7.8 0443 2\r\n", "leading zero"),
    ("port-double-zero", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", "leading zero"),
    ("port-negative", b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "not a decimal"),
    ("port-plus", b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "not a decimal"),
    ("port-unicode-digit", "PROXY TCP4 1.2.3.4 5.6.7.8 \u0661 2\r\n".encode(), "not a decimal"),
    ("port-empty", b"PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n", "not a decimal"),
    ("v2-bad-signature", SIG[:11] + b"X" + b"\x21\x11\x00\x0c", "bad v2 signature"),
    ("v2-signature-without-nul", b"\r\n\r\nQUIT", "bad v2 signature"),
    ("v2-version-1", v2(0x11, 0x11, V2_ADDRESSES_V4), "version 1, not 2"),
    ("v2-version-3", v2(0x31, 0x11, V2_ADDRESSES_V4), "version 3, not 2"),
    ("v2-command-2", v2(0x22, 0x11, V2_ADDRESSES_V4), "command 0x2"),
    ("v2-command-f", v2(0x2F, 0x11, V2_ADDRESSES_V4), "command 0xf"),
    ("v2-family-4", v2(0x21, 0x41, V2_ADDRESSES_V4), "undefined address family 0x4"),
    ("v2-local-family-f", v2(0x20, 0xF0, b""), "undefined address family 0xf"),
    ("v2-protocol-3", v2(0x21, 0x13, V2_ADDRESSES_V4), "undefined transport protocol 0x3"),
    ("v2-udp4", v2(0x21, 0x12, V2_ADDRESSES_V4), "DGRAM"),
    ("v2-udp6", v2(0x21, 0x22, V2_ADDRESSES_V6), "DGRAM"),
    ("v2-unix-dgram", v2(0x21, 0x32, V2_ADDRESSES_UNIX), "DGRAM"),
    ("v2-inet-unspec-protocol", v2(0x21, 0x10, V2_ADDRESSES_V4), "both be UNSPEC"),
    ("v2-unspec-stream", v2(0x21, 0x01, b""), "both be UNSPEC"),
    ("v2-inet-length-11", v2(0x21, 0x11, V2_ADDRESSES_V4[:11]), "length 11 is too small"),
    ("v2-inet-length-0", v2(0x21, 0x11, b""), "length 0 is too small for the address block"),
    ("v2-inet6-length-35", v2(0x21, 0x21, V2_ADDRESSES_V6[:35]), "length 35 is too small"),
    ("v2-inet6-with-inet-block", v2(0x21, 0x21, V2_ADDRESSES_V4), "length 12 is too small"),
    ("v2-unix-length-215", v2(0x21, 0x31, V2_ADDRESSES_UNIX[:215]), "(216 bytes)"),
    (
        "v2-tlv-overruns",
        v2(0x21, 0x11, V2_ADDRESSES_V4 + b"\x01\x00\x05abcd"),
        "announces 5 bytes but only 4 remain",
    ),
    (
        "v2-tlv-length-ffff",
        v2(0x21, 0x11, V2_ADDRESSES_V4 + b"\x01\xff\xff"),
        "announces 65535 bytes but only 0 remain",
    ),
    ("v2-tlv-header-cut-1", v2(0x21, 0x11, V2_ADDRESSES_V4 + b"\x01"), "1 stray byte"),
    ("v2-tlv-header-cut-2", v2(0x21, 0x11, V2_ADDRESSES_V4 + b"\x01\x00"), "2 stray byte"),
    (
        "v2-tlv-after-good-one",
        v2(0x21, 0x11, V2_ADDRESSES_V4 + b"\x04\x00\x00\x05\x00\x09xx"),
        "type 0x05 announces 9",
    ),
    ("v2-local-unspec-bad-tlv", v2(0x20, 0x00, b"\x01\x00\x09x"), "announces 9 bytes"),
    ("v2-proxy-unspec-bad-tlv", v2(0x21, 0x00, b"ab"), "2 stray byte"),
    (
        "v2-unix-source-without-nul",
        v2(0x21, 0x31, b"/" * 108 + b"/dst".ljust(108, b"\x00")),
        "source path is not NUL-terminated",
    ),
    (
        "v2-unix-destination-without-nul",
        v2(0x21, 0x31, b"/src".ljust(108, b"\x00") + b"d" * 108),
        "destination path is not NUL-terminated",
    ),
    ("v2-over-limit", v2(0x21, 0x11, b"", length=MAX_PROXY_HEADER_SIZE - 15), "exceeds the limit"),
    ("v2-length-ffff", v2(0x20, 0x00, b"", length=0xFFFF), "65551 bytes exceeds"),
]


@pytest.mark.parametrize(
    ("raw", "message"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_malformed_header_is_rejected(raw: bytes, message: str) -> None:
    """Malformed input raises ProxyProtocolError naming the problem and carrying the bytes."""
    with pytest.raises(ProxyProtocolError, match=_literal(message)) as caught:
        parse_proxy_header(raw)
    assert caught.value.data
    assert raw.startswith(caught.value.data)
    assert len(caught.value.data) <= 108
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(raw + TRAILING)


@pytest.mark.parametrize(
    ("raw", "message"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_malformed_header_fails_fast(raw: bytes, message: str) -> None:
    """The error comes with the byte that makes the input invalid: never None after it."""
    first_failure = None
    for end in range(1, len(raw) + 1):
        try:
            parse_proxy_header(raw[:end])
        except ProxyProtocolError:
            first_failure = end
            break
    assert first_failure is not None
    # Every longer input fails too (no later byte can rescue it).
    for end in range(first_failure, len(raw) + 1):
        with pytest.raises(ProxyProtocolError):
            parse_proxy_header(raw[:end])


@pytest.mark.parametrize(
    ("raw", "fails_at"),
    [
        (b"GET / HTTP/1.1\r\n", 1),
        (b"\x16\x03\x01", 1),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".lower(), 1),
        (b"PRX", 3),
        (b"PROXY TCP5", 10),
        (b"PROXY TCP4 1.2.a", 16),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 0", 0),  # "0" may still be the whole port
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 01", 29),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", 31),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r", 29),  # the CR ends the line: a port is missing
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", 0),
        (SIG[:5] + b"\x01", 6),
        (SIG + b"\x11", 13),
        (SIG + b"\x21\x12", 14),
        (SIG + b"\x21\x11\x00\x0b", 16),
        (SIG + b"\x21\x11" + (MAX_PROXY_HEADER_SIZE - 15).to_bytes(2, "big"), 16),
    ],
)
def test_fails_on_the_first_bad_byte(raw: bytes, fails_at: int) -> None:
    """Garbage is rejected at the first byte that cannot start a header (0: never fails)."""
    for end in range(len(raw) + 1):
        if fails_at and end >= fails_at:
            with pytest.raises(ProxyProtocolError):
                parse_proxy_header(raw[:end])
        else:
            assert parse_proxy_header(raw[:end]) is None


@pytest.mark.parametrize(
    "start", [b"PROXY UNKNOWN ", b"PROXY TCP6 ", b"PROXY TCP6 1:2:3:4:5:6:7:8 "]
)
def test_v1_without_crlf_fails_by_byte_107(start: bytes) -> None:
    """A v1 line with no CRLF in its first 107 bytes is rejected at byte 107, not later."""
    filler = b"a" if start == b"PROXY UNKNOWN " else b":"
    line = start + filler * (200 - len(start))
    failed_at = None
    for end in range(len(line) + 1):
        try:
            assert parse_proxy_header(line[:end]) is None
        except ProxyProtocolError:
            failed_at = end
            break
    assert failed_at is not None
    assert failed_at <= 107


def test_v1_crlf_must_end_by_byte_107() -> None:
    """A CRLF ending at byte 107 is accepted; one that would end at byte 108 is rejected as
    soon as its CR arrives as byte 107."""
    line = b"PROXY UNKNOWN " + b"x" * 91
    assert len(line) == 105
    assert parse_proxy_header(line) is None
    assert parse_proxy_header(line + b"\r") is None
    assert parse_proxy_header(line + b"\r\n") == (
        ProxyHeader(1, "PROXY", "UNKNOWN", None, None),
        107,
    )
    assert parse_proxy_header(line + b"x") is None
    for late in (b"x\r", b"xx", b"x\r\n"):
        with pytest.raises(ProxyProtocolError, match="no CRLF within its maximum of 107 bytes"):
            parse_proxy_header(line + late)


def test_v2_header_exactly_at_the_limit_is_accepted() -> None:
    """A v2 header of exactly MAX_PROXY_HEADER_SIZE bytes parses; one more byte does not."""
    padding = MAX_PROXY_HEADER_SIZE - 16 - 12 - 3
    raw = encode_proxy_header_v2("PROXY", "TCP4", *SPEC_V4, tlvs=[(0x04, b"\x00" * padding)])
    assert len(raw) == MAX_PROXY_HEADER_SIZE
    header, used = parse_proxy_header(raw + TRAILING) or (None, 0)
    assert used == MAX_PROXY_HEADER_SIZE
    assert header == ProxyHeader(2, "PROXY", "TCP4", *SPEC_V4, tlvs=((0x04, b"\x00" * padding),))
    too_big = encode_proxy_header_v2(
        "PROXY", "TCP4", *SPEC_V4, tlvs=[(0x04, b"\x00" * (padding + 1))]
    )
    with pytest.raises(
        ProxyProtocolError, match=f"limit of MAX_PROXY_HEADER_SIZE = {MAX_PROXY_HEADER_SIZE}"
    ):
        parse_proxy_header(too_big[:16])


def test_limit_is_the_nginx_value() -> None:
    """The v2 limit is nginx's 4096 bytes, far above the 232-byte largest address block."""
    assert MAX_PROXY_HEADER_SIZE == 4096


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: encode_proxy_header_v1("UNKNOWN", SPEC_V4[0], None), "no addresses"),
        (lambda: encode_proxy_header_v1("TCP4", *SPEC_V6), "is not IPv4"),
        (lambda: encode_proxy_header_v1("TCP6", *SPEC_V4), "is not IPv6"),
        (lambda: encode_proxy_header_v1("TCP4", ("1.2.3.4", 65536), SPEC_V4[1]), "outside"),
        (lambda: encode_proxy_header_v1("TCP4", ("1.2.3.4", -1), SPEC_V4[1]), "outside"),
        (lambda: encode_proxy_header_v1("TCP4", ("01.2.3.4", 1), SPEC_V4[1]), "not an IP"),
        (lambda: encode_proxy_header_v1("TCP4", None, SPEC_V4[1]), "(ip, port) tuple"),
        (lambda: encode_proxy_header_v1("TCP4", ("1.2.3.4", True), SPEC_V4[1]), "tuple"),
        (lambda: encode_proxy_header_v1("TCP6", ("fe80::1%eth0", 1), SPEC_V6[1]), "scope"),
        (lambda: encode_proxy_header_v2("LOCAL", "TCP4", *SPEC_V4), "LOCAL headers carry no"),
        (lambda: encode_proxy_header_v2("PROXY", "UNKNOWN", SPEC_V4[0], None), "no addresses"),
        (lambda: encode_proxy_header_v2("PROXY", "UNIX", "/a", ("1.2.3.4", 1)), "path string"),
        (lambda: encode_proxy_header_v2("PROXY", "UNIX", "/" * 108, "/b"), "at most 107"),
        (lambda: encode_proxy_header_v2("PROXY", "UNIX", "/a\x00b", "/b"), "without NUL"),
        (lambda: encode_proxy_header_v2("PROXY", "UNIX", "\x00a\x00", "/b"), "not end with"),
        (lambda: encode_proxy_header_v2("PROXY", "UNIX", "\ud800", "/b"), "cannot be encoded"),
        (lambda: encode_proxy_header_v2("PROXY", "UNKNOWN", None, None, [(256, b"")]), "0-255"),
        (
            lambda: encode_proxy_header_v2("PROXY", "UNKNOWN", None, None, [(1, b"x" * 65536)]),
            "more than 65535",
        ),
        (
            lambda: encode_proxy_header_v2(
                "PROXY", "UNKNOWN", None, None, [(1, b"x" * 40000), (2, b"x" * 40000)]
            ),
            "more than 65535",
        ),
    ],
)
def test_encoder_rejects_what_it_cannot_encode(call: Callable[[], bytes], message: str) -> None:
    """Encoding impossible headers raises LocalProtocolError instead of writing bad bytes."""
    with pytest.raises(LocalProtocolError, match=_literal(message)):
        call()


def test_encoder_canonicalises_ip_text() -> None:
    """The encoders accept any spelling ipaddress accepts and write the canonical one."""
    assert (
        encode_proxy_header_v1("TCP6", ("2001:DB8:0::1", 1), ("::FFFF:1.2.3.4", 2))
        == f"PROXY TCP6 2001:db8::1 {ipaddress.ip_address('::ffff:102:304')} 1 2\r\n".encode()
    )


def test_module_does_not_import_io() -> None:
    """The parser is sans-IO: no trio, anyio, asyncio or socket import anywhere in it."""
    tree = ast.parse(Path(_proxy.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert imported
    assert not imported & {"trio", "anyio", "asyncio", "socket", "os"}


def test_header_is_frozen() -> None:
    """ProxyHeader is immutable and hashable."""
    header = VALID_CASES[0][1]
    with pytest.raises(AttributeError):
        header.version = 2  # type: ignore[misc]
    assert hash(header) == hash(ProxyHeader(1, "PROXY", "TCP4", *SPEC_V4))


def _literal(text: str) -> str:
    """Escape ``text`` for pytest.raises(match=...)."""
    return re.escape(text)


# --- properties -----------------------------------------------------------------------------

STARTS = [
    b"",
    b"PROXY ",
    b"PROXY TCP4 ",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 ",
    b"PROXY TCP6 ",
    b"PROXY TCP6 ::1 ::2 1 ",
    b"PROXY UNKNOWN",
    SIG,
    SIG + b"\x21",
    SIG + b"\x20",
    SIG + b"\x21\x11\x00\x0c",
    SIG + b"\x21\x11\x00",
    SIG + b"\x21\x00\x00",
    SIG + b"\x20\x00\x00",
    SIG + b"\x21\x31\x00\xd8",
]


@settings(max_examples=500, database=None, deadline=None)
@given(start=st.sampled_from(STARTS), rest=st.binary(max_size=300))
def test_any_bytes_give_none_a_header_or_proxy_protocol_error(start: bytes, rest: bytes) -> None:
    """For any input the parser returns None or a header, or raises ProxyProtocolError; a
    header is self-delimiting and none of its proper prefixes is an error."""
    data = start + rest
    try:
        result = parse_proxy_header(data)
    except ProxyProtocolError as error:
        assert data.startswith(error.data)
        return
    if result is not None:
        header, used = result
        assert isinstance(header, ProxyHeader)
        assert 0 < used <= len(data)
        assert parse_proxy_header(data[:used]) == result
        for end in range(used):
            assert parse_proxy_header(data[:end]) is None


ports = st.integers(0, 65535)
ipv4 = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(0, 2**32 - 1))
ipv6 = st.builds(lambda n: str(ipaddress.IPv6Address(n)), st.integers(0, 2**128 - 1))
unix_path = st.one_of(
    st.binary(max_size=107)
    .filter(lambda raw: b"\x00" not in raw)
    .map(lambda raw: raw.decode("utf-8", "surrogateescape")),
    st.binary(min_size=1, max_size=107)
    .filter(lambda raw: not raw.endswith(b"\x00"))
    .map(lambda raw: "\x00" + raw.decode("utf-8", "surrogateescape")),
)
tlv_lists = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=6)


V1_FAMILIES: tuple[Literal["TCP4", "TCP6", "UNKNOWN"], ...] = ("TCP4", "TCP6", "UNKNOWN")
V2_FAMILIES: tuple[Literal["TCP4", "TCP6", "UNIX", "UNKNOWN"], ...] = (
    "TCP4",
    "TCP6",
    "UNIX",
    "UNKNOWN",
)
COMMANDS: tuple[Literal["PROXY", "LOCAL"], ...] = ("PROXY", "LOCAL")


@st.composite
def headers(draw: st.DrawFn) -> tuple[ProxyHeader, bytes]:
    """A valid header and its encoding (v1 or v2, every family and command)."""
    if draw(st.booleans()):
        v1_family = draw(st.sampled_from(V1_FAMILIES))
        if v1_family == "UNKNOWN":
            header = ProxyHeader(1, "PROXY", "UNKNOWN", None, None)
            return header, encode_proxy_header_v1("UNKNOWN", None, None)
        ips = ipv4 if v1_family == "TCP4" else ipv6
        source = (draw(ips), draw(ports))
        destination = (draw(ips), draw(ports))
        header = ProxyHeader(1, "PROXY", v1_family, source, destination)
        return header, encode_proxy_header_v1(v1_family, source, destination)
    command = draw(st.sampled_from(COMMANDS))
    family = "UNKNOWN" if command == "LOCAL" else draw(st.sampled_from(V2_FAMILIES))
    v2_source: tuple[str, int] | str | None = None
    v2_destination: tuple[str, int] | str | None = None
    if family in ("TCP4", "TCP6"):
        ips = ipv4 if family == "TCP4" else ipv6
        v2_source = (draw(ips), draw(ports))
        v2_destination = (draw(ips), draw(ports))
    elif family == "UNIX":
        v2_source, v2_destination = draw(unix_path), draw(unix_path)
    tlvs = tuple(draw(tlv_lists))
    header = ProxyHeader(2, command, family, v2_source, v2_destination, tlvs)
    return header, encode_proxy_header_v2(command, family, v2_source, v2_destination, tlvs)


@settings(max_examples=500, database=None, deadline=None)
@given(case=headers(), trailing=st.binary(max_size=200))
def test_valid_header_then_anything_parses_to_the_header(
    case: tuple[ProxyHeader, bytes], trailing: bytes
) -> None:
    """A valid header followed by any bytes parses to that header and exactly its length, and
    every proper prefix of it needs more bytes."""
    header, encoded = case
    assert parse_proxy_header(encoded + trailing) == (header, len(encoded))
    for end in range(len(encoded)):
        assert parse_proxy_header(encoded[:end]) is None
