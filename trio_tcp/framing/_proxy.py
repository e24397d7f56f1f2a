"""The PROXY protocol header (HAProxy's, versions 1 and 2), sans-IO: parse and encode.

A proxy that relays a TCP connection can prepend one PROXY header telling the server who the
real client was. The spec is HAProxy's ``doc/proxy-protocol.txt``; section numbers below refer to
it. :func:`parse_proxy_header` reads a header from the front of a receive buffer (version 1 or 2,
told apart by the first byte) and :func:`encode_proxy_header_v1` /
:func:`encode_proxy_header_v2` write one (for tests and for clients that sit behind nothing).

The parser is strict, as section 2.1 asks ("any sequence which does not exactly match the
protocol must be discarded ... as soon as possible"): it raises :class:`ProxyProtocolError` on
the first byte that cannot belong to a valid header, so a peer that speaks HTTP straight away
fails on its first byte, not after 107 of them.

Decisions the spec leaves to the receiver:

- Version 1 ``UNKNOWN``: everything up to the CRLF is ignored (section 2.1); the header has
  family ``"UNKNOWN"`` and no addresses, and the command is ``"PROXY"`` (that is the word on the
  wire). Whatever the command, ``source is None`` means "use the real connection's addresses".
- Version 2 ``LOCAL``: the family is ignored (section 2.2) so the header reports ``"UNKNOWN"``
  and no addresses, but the length is honoured and all of the block is consumed. The family
  byte must still hold defined values. TLVs are read only when the family is ``AF_UNSPEC``
  (no address block: the form the spec advises senders to use for LOCAL); with another family
  the block may or may not carry addresses ("must not assume zero is presented"), so it is
  skipped whole and ``tlvs`` is empty.
- Version 2 ``PROXY``: ``AF_UNSPEC``/``UNSPEC`` (byte ``0x00``) is accepted as "unknown" (no
  addresses, TLVs right after the 16-byte header); TCP over IPv4/IPv6 and UNIX stream sockets
  are decoded. ``DGRAM`` is rejected (a stream server cannot have received a datagram) and so
  are half-unspecified bytes such as ``0x10`` (section 2.2 lets the receiver reject them: the
  size of their address block is unknown, so nothing after it could be located).
- UNIX socket paths are the bytes before the first NUL, decoded as UTF-8 with
  ``surrogateescape`` (like ``os.fsdecode``); a path with no NUL in its 108 bytes is an error.
  A field starting with NUL is a Linux abstract-namespace name: it keeps its leading NUL and
  loses its trailing padding (an all-NUL field, the usual unnamed client socket, is ``""``).

The parser keeps no state: call it again with the grown buffer. Each call looks at no more than
107 bytes (version 1) or :data:`MAX_PROXY_HEADER_SIZE` bytes (version 2).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .._exceptions import LocalProtocolError, ProxyProtocolError

__all__ = [
    "MAX_PROXY_HEADER_SIZE",
    "ProxyAddress",
    "ProxyCommand",
    "ProxyFamily",
    "ProxyHeader",
    "encode_proxy_header_v1",
    "encode_proxy_header_v2",
    "parse_proxy_header",
]

#: ``"PROXY"``: relayed for a client; ``"LOCAL"``: the proxy's own connection (a health check).
ProxyCommand: TypeAlias = Literal["PROXY", "LOCAL"]
#: The address family a PROXY header names.
ProxyFamily: TypeAlias = Literal["TCP4", "TCP6", "UNIX", "UNKNOWN"]
#: ``(ip, port)`` for TCP4/TCP6, a path for UNIX, ``None`` when there is no address.
ProxyAddress: TypeAlias = tuple[str, int] | str | None

#: Limit on a whole version 2 header (16 fixed bytes + the length field), in bytes. nginx uses
#: the same (NGX_PROXY_PROTOCOL_MAX_HEADER = 4096): the spec's own blocks fit in 232 bytes and
#: the TLVs real proxies add (AWS, GCP, Azure, HAProxy SSL info) in a few hundred more, while
#: the 16-bit length field would otherwise let a peer make us buffer 64 KiB before any check.
MAX_PROXY_HEADER_SIZE = 4096

# Section 2.1: "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n" is the longest
# line a receiver must support; the CRLF must be found within it.
_V1_MAX_LENGTH = 107
_V1_PREFIX = b"PROXY "
_V1_FAMILIES = (b"TCP4", b"TCP6", b"UNKNOWN")
_V1_IPV4_CHARS = frozenset(b"0123456789.")
# Hex groups per section 2.1, plus dots: inet_ntop (HAProxy's sender) writes IPv4-mapped
# addresses as ::ffff:192.0.2.1.
_V1_IPV6_CHARS = frozenset(b"0123456789abcdefABCDEF:.")
_V1_IPV4_MAX = len("255.255.255.255")
_V1_IPV6_MAX = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")

_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_FIXED = 16
_V2_VERSION = 0x2
_V2_LOCAL = 0x0
_V2_PROXY = 0x1
# Highest defined values of the two halves of byte 14: AF_UNSPEC/INET/INET6/UNIX = 0-3 and
# UNSPEC/STREAM/DGRAM = 0-2 (section 2.2).
_AF_UNIX = 0x3
_PROTO_DGRAM = 0x2
_UNIX_PATH_SIZE = 108
# Address block sizes of the family bytes accepted with the PROXY command (section 2.2).
_V2_BLOCK_SIZES = {0x00: 0, 0x11: 12, 0x21: 36, 0x31: 2 * _UNIX_PATH_SIZE}
_V2_FAMILY_NAMES: dict[int, ProxyFamily] = {
    0x00: "UNKNOWN",
    0x11: "TCP4",
    0x21: "TCP6",
    0x31: "UNIX",
}
_V2_FAMILY_BYTES = {name: byte for byte, name in _V2_FAMILY_NAMES.items()}
_TLV_HEADER = 3
_MAX_U16 = 0xFFFF

# The most of the offending bytes an error carries.
_ERROR_DATA_LIMIT = 108


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One parsed PROXY protocol header.

    Attributes:
      version: 1 (text) or 2 (binary).
      command: ``"PROXY"`` (relayed on behalf of ``source``) or ``"LOCAL"`` (version 2 only:
        the proxy's own connection, e.g. a health check).
      family: ``"TCP4"``, ``"TCP6"``, ``"UNIX"`` or ``"UNKNOWN"`` (no addresses given).
      source: the real client, ``(ip, port)`` for TCP4/TCP6 with the IP in ``ipaddress``'s
        canonical text, a path for UNIX, ``None`` for LOCAL and UNKNOWN. ``None`` means: use
        the connection's own peer address.
      destination: the address the client connected to, in the same form.
      tlvs: version 2 type-length-value extensions as ``(type, raw value)``, in wire order.
    """

    version: int
    command: ProxyCommand
    family: ProxyFamily
    source: ProxyAddress
    destination: ProxyAddress
    tlvs: tuple[tuple[int, bytes], ...] = ()


def parse_proxy_header(
    data: bytes | bytearray | memoryview,
) -> tuple[ProxyHeader, int] | None:
    """Parse a PROXY header (v1 or v2, auto-detected) at the start of ``data``.

    Arguments:
      data: the bytes received so far; bytes after the header are left alone.

    Returns:
      ``(header, number of bytes it used)`` when the header is complete, ``None`` when more
      bytes are needed (including when ``data`` is empty).

    Raises:
      ProxyProtocolError: as soon as ``data`` cannot be the start of a valid header: it matches
        neither signature, a field is malformed, a version 1 line has no CRLF within 107 bytes,
        or a version 2 header announces more than :data:`MAX_PROXY_HEADER_SIZE` bytes. Its
        ``data`` attribute holds the offending prefix (at most 108 bytes).
    """
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    if not view:
        return None
    if view[0] == _V1_PREFIX[0]:
        return _parse_v1(bytes(view[:_V1_MAX_LENGTH]))
    if view[0] == _V2_SIGNATURE[0]:
        return _parse_v2(view)
    raise _error("not a PROXY protocol header (neither the v1 nor the v2 signature)", view[:1])


def _error(message: str, data: bytes | bytearray | memoryview) -> ProxyProtocolError:
    return ProxyProtocolError(message, data=bytes(data[:_ERROR_DATA_LIMIT]))


# --- version 1 ------------------------------------------------------------------------------


def _parse_v1(window: bytes) -> tuple[ProxyHeader, int] | None:
    """Parse a version 1 line from ``window`` (the first 107 bytes received at most)."""
    end = len(window)
    for index, byte in enumerate(window):
        if byte == 0x0A:
            raise _error(
                "PROXY v1 line has a bare LF (the line must end with CRLF)", window[: index + 1]
            )
        if byte == 0x0D:
            end = index
            break
    # The line's text is final once its CR is in, even if the LF is still on its way.
    ended = end < len(window)
    complete = end + 1 < len(window)
    if complete and window[end + 1] != 0x0A:
        raise _error("PROXY v1 line has a CR not followed by LF", window[: end + 2])
    if not complete and len(window) >= _V1_MAX_LENGTH:
        raise _error(
            f"PROXY v1 line has no CRLF within its maximum of {_V1_MAX_LENGTH} bytes", window
        )
    header = _parse_v1_fields(window[:end], ended)
    if header is None or not complete:
        return None
    return header, end + 2


def _parse_v1_fields(line: bytes, complete: bool) -> ProxyHeader | None:
    """Check ``line`` (without CRLF); return the header if ``complete``, else ``None``.

    An incomplete line is checked as far as it goes: every finished field in full, the field
    still arriving for its characters and length, so that garbage fails on its first byte.
    """
    prefix_length = min(len(line), len(_V1_PREFIX))
    if line[:prefix_length] != _V1_PREFIX[:prefix_length]:
        raise _error('not a PROXY protocol header (v1 lines start with "PROXY ")', line)
    if len(line) < len(_V1_PREFIX):
        if complete:
            raise _error("PROXY v1 line ends before its protocol family", line)
        return None

    fields = line[len(_V1_PREFIX) :].split(b" ")
    family = fields[0]
    if len(fields) == 1 and not complete:
        if not any(name.startswith(family) for name in _V1_FAMILIES):
            raise _error(f"PROXY v1 family {_show(family)} is not TCP4, TCP6 or UNKNOWN", line)
        return None
    if family == b"UNKNOWN":
        # Section 2.1: "the receiver must ignore anything presented before the CRLF".
        if not complete:
            return None
        return ProxyHeader(1, "PROXY", "UNKNOWN", None, None)
    if family not in (b"TCP4", b"TCP6"):
        raise _error(f"PROXY v1 family {_show(family)} is not TCP4, TCP6 or UNKNOWN", line)

    # Fields first, count second: the error names the first field that went wrong, at the
    # same point whether the line arrived whole or byte by byte.
    values = fields[1:]
    addresses: list[str] = []
    ports: list[int] = []
    for position, value in enumerate(values[:4]):
        finished = complete or position < len(values) - 1
        if position < 2:
            address = _v1_address(family, value, finished, line)
            if address is not None:
                addresses.append(address)
        else:
            port = _v1_port(value, finished, line)
            if port is not None:
                ports.append(port)
    if len(values) > 4 or (complete and len(values) < 4):
        raise _error(
            f"PROXY v1 {family.decode()} line needs exactly 4 fields after the family "
            "(source address, destination address, source port, destination port), "
            "separated by single spaces",
            line,
        )
    if not complete:
        return None
    return ProxyHeader(
        1,
        "PROXY",
        "TCP4" if family == b"TCP4" else "TCP6",
        (addresses[0], ports[0]),
        (addresses[1], ports[1]),
    )


def _v1_address(family: bytes, value: bytes, finished: bool, line: bytes) -> str | None:
    """Validate one v1 address field; return its canonical text once ``finished``."""
    if family == b"TCP4":
        allowed, longest = _V1_IPV4_CHARS, _V1_IPV4_MAX
    else:
        allowed, longest = _V1_IPV6_CHARS, _V1_IPV6_MAX
    if family == b"TCP4" and b":" in value:
        raise _error(f"PROXY v1 TCP4 line carries an IPv6 address {_show(value)}", line)
    if not set(value) <= allowed or len(value) > longest:
        raise _error(f"PROXY v1 {family.decode()} address {_show(value)} is malformed", line)
    if not finished:
        return None
    text = value.decode("ascii")
    try:
        if family == b"TCP4":
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(text)
        else:
            address = ipaddress.IPv6Address(text)
    except ValueError:
        if family == b"TCP6" and b"." in value and b":" not in value:
            raise _error(
                f"PROXY v1 TCP6 line carries an IPv4 address {_show(value)}", line
            ) from None
        raise _error(
            f"PROXY v1 {family.decode()} address {_show(value)} is malformed", line
        ) from None
    # Section 2.1 forbids leading zeroes ("confusion with octal numbers"): the dotted quad
    # must be exactly what ipaddress would write.
    if family == b"TCP4" and str(address) != text:
        raise _error(f"PROXY v1 TCP4 address {_show(value)} is not in canonical form", line)
    return str(address)


def _v1_port(value: bytes, finished: bool, line: bytes) -> int | None:
    """Validate one v1 port field (decimal 0-65535, no leading zeroes); return it once
    ``finished``."""
    if not value.isdigit() and (finished or value):
        raise _error(f"PROXY v1 port {_show(value)} is not a decimal number", line)
    if len(value) > 1 and value[0] == ord("0"):
        raise _error(f"PROXY v1 port {_show(value)} has a leading zero", line)
    if len(value) > len("65535") or (finished and int(value) > _MAX_U16):
        raise _error(f"PROXY v1 port {_show(value)} is out of range 0-65535", line)
    if not finished:
        return None
    return int(value)


def _show(value: bytes) -> str:
    """Quote a field for an error message."""
    return repr(value[:48])[1:]


# --- version 2 ------------------------------------------------------------------------------


def _parse_v2(data: bytes | memoryview) -> tuple[ProxyHeader, int] | None:
    """Parse a version 2 header at the start of ``data``, checking each byte as it arrives."""
    signature_length = min(len(data), len(_V2_SIGNATURE))
    if data[:signature_length] != _V2_SIGNATURE[:signature_length]:
        raise _error("not a PROXY protocol header (bad v2 signature)", data[:signature_length])
    if len(data) <= len(_V2_SIGNATURE):
        return None

    version, command = data[12] >> 4, data[12] & 0x0F
    if version != _V2_VERSION:
        raise _error(f"PROXY v2 header has version {version}, not 2", data[:13])
    if command not in (_V2_LOCAL, _V2_PROXY):
        raise _error(
            f"PROXY v2 header has command {command:#x} (only 0 LOCAL and 1 PROXY exist)",
            data[:13],
        )
    if len(data) < 14:
        return None

    family_byte = data[13]
    family, protocol = family_byte >> 4, family_byte & 0x0F
    if family > _AF_UNIX:
        raise _error(f"PROXY v2 header has undefined address family {family:#x}", data[:14])
    if protocol > _PROTO_DGRAM:
        raise _error(f"PROXY v2 header has undefined transport protocol {protocol:#x}", data[:14])
    if command == _V2_PROXY:
        if protocol == _PROTO_DGRAM:
            raise _error(
                "PROXY v2 header is for a DGRAM (UDP or UNIX datagram) connection, "
                "but this is a stream server",
                data[:14],
            )
        if family_byte not in _V2_BLOCK_SIZES:
            raise _error(
                f"PROXY v2 header has family byte {family_byte:#04x}: the address family and "
                "the transport protocol must both be UNSPEC or both be specified",
                data[:14],
            )
    if len(data) < _V2_FIXED:
        return None

    length = int.from_bytes(data[14:16], "big")
    total = _V2_FIXED + length
    if total > MAX_PROXY_HEADER_SIZE:
        raise _error(
            f"PROXY v2 header of {total} bytes exceeds the limit of "
            f"MAX_PROXY_HEADER_SIZE = {MAX_PROXY_HEADER_SIZE} bytes",
            data[:_V2_FIXED],
        )
    if command == _V2_PROXY:
        block_size = _V2_BLOCK_SIZES[family_byte]
        if length < block_size:
            raise _error(
                f"PROXY v2 length {length} is too small for the address block of family "
                f"{_V2_FAMILY_NAMES[family_byte]} ({block_size} bytes)",
                data[:_V2_FIXED],
            )
    if len(data) < total:
        return None

    header = bytes(data[:total])
    if command == _V2_LOCAL:
        # Section 2.2: for LOCAL "discard the protocol block including the family".
        tlvs = _parse_tlvs(header, _V2_FIXED) if family_byte == 0x00 else ()
        return ProxyHeader(2, "LOCAL", "UNKNOWN", None, None, tlvs), total

    block = header[_V2_FIXED:]
    source: ProxyAddress
    destination: ProxyAddress
    if family_byte == 0x11:
        source = (str(ipaddress.IPv4Address(block[0:4])), int.from_bytes(block[8:10], "big"))
        destination = (
            str(ipaddress.IPv4Address(block[4:8])),
            int.from_bytes(block[10:12], "big"),
        )
    elif family_byte == 0x21:
        source = (str(ipaddress.IPv6Address(block[0:16])), int.from_bytes(block[32:34], "big"))
        destination = (
            str(ipaddress.IPv6Address(block[16:32])),
            int.from_bytes(block[34:36], "big"),
        )
    elif family_byte == 0x31:
        source = _unix_path(block[:_UNIX_PATH_SIZE], "source", header)
        destination = _unix_path(
            block[_UNIX_PATH_SIZE : 2 * _UNIX_PATH_SIZE], "destination", header
        )
    else:
        source = destination = None
    tlvs = _parse_tlvs(header, _V2_FIXED + _V2_BLOCK_SIZES[family_byte])
    return (
        ProxyHeader(2, "PROXY", _V2_FAMILY_NAMES[family_byte], source, destination, tlvs),
        total,
    )


def _unix_path(field: bytes, which: str, header: bytes) -> str:
    """Decode one 108-byte ``sun_path`` field (see the module docstring)."""
    if field[0] == 0:
        return field.rstrip(b"\x00").decode("utf-8", "surrogateescape")
    end = field.find(b"\x00")
    if end == -1:
        raise _error(
            f"PROXY v2 UNIX {which} path is not NUL-terminated within {_UNIX_PATH_SIZE} bytes",
            header,
        )
    return field[:end].decode("utf-8", "surrogateescape")


def _parse_tlvs(header: bytes, start: int) -> tuple[tuple[int, bytes], ...]:
    """Split ``header[start:]`` into TLVs; each must fit exactly (section 2.2)."""
    tlvs: list[tuple[int, bytes]] = []
    position = start
    while position < len(header):
        if len(header) - position < _TLV_HEADER:
            raise _error(
                f"PROXY v2 header ends with {len(header) - position} stray byte(s), "
                f"too few for a TLV (at least {_TLV_HEADER})",
                header,
            )
        kind = header[position]
        size = int.from_bytes(header[position + 1 : position + 3], "big")
        position += _TLV_HEADER
        if position + size > len(header):
            raise _error(
                f"PROXY v2 TLV of type {kind:#04x} announces {size} bytes but only "
                f"{len(header) - position} remain in the header",
                header,
            )
        tlvs.append((kind, header[position : position + size]))
        position += size
    return tuple(tlvs)


# --- encoding -------------------------------------------------------------------------------


def encode_proxy_header_v1(
    family: Literal["TCP4", "TCP6", "UNKNOWN"],
    source: tuple[str, int] | None,
    destination: tuple[str, int] | None,
) -> bytes:
    """Encode a version 1 (text) PROXY line, CRLF included.

    Arguments:
      family: ``"TCP4"``, ``"TCP6"`` or ``"UNKNOWN"``.
      source, destination: ``(ip, port)`` with an IP of the family's version, or ``None`` for
        both with ``"UNKNOWN"`` (which is sent in the short form ``PROXY UNKNOWN\\r\\n``).

    Raises:
      LocalProtocolError: the family and addresses do not fit together, an IP is invalid or a
        port is outside 0-65535.
    """
    if family == "UNKNOWN":
        if source is not None or destination is not None:
            raise LocalProtocolError("PROXY v1 UNKNOWN carries no addresses; pass None")
        return b"PROXY UNKNOWN\r\n"
    if family not in ("TCP4", "TCP6"):
        raise LocalProtocolError(f"PROXY v1 family must be TCP4, TCP6 or UNKNOWN, not {family!r}")
    source_ip, source_port = _ip_and_port(family, source, "source")
    destination_ip, destination_port = _ip_and_port(family, destination, "destination")
    return (
        f"PROXY {family} {source_ip} {destination_ip} {source_port} {destination_port}\r\n"
    ).encode("ascii")


def encode_proxy_header_v2(
    command: ProxyCommand,
    family: ProxyFamily,
    source: ProxyAddress,
    destination: ProxyAddress,
    tlvs: tuple[tuple[int, bytes], ...] | list[tuple[int, bytes]] = (),
) -> bytes:
    """Encode a version 2 (binary) PROXY header.

    Arguments:
      command: ``"PROXY"`` or ``"LOCAL"``; ``"LOCAL"`` needs family ``"UNKNOWN"`` and no
        addresses (it is sent as ``AF_UNSPEC`` with no address block, as the spec advises).
      family: ``"TCP4"`` / ``"TCP6"`` (STREAM over IPv4/IPv6, ``(ip, port)`` addresses),
        ``"UNIX"`` (stream socket, path addresses of at most 107 UTF-8 bytes, or an abstract
        name starting with NUL of at most 108) or ``"UNKNOWN"`` (``AF_UNSPEC``, no addresses).
      source, destination: the addresses, as in :class:`ProxyHeader`.
      tlvs: ``(type, value)`` pairs, type 0-255, value at most 65535 bytes, in order.

    Raises:
      LocalProtocolError: the arguments do not fit together or do not fit the format (an
        invalid IP, a port outside 0-65535, a path too long, a header over 65551 bytes).
    """
    if command not in ("PROXY", "LOCAL"):
        raise LocalProtocolError(f"PROXY v2 command must be PROXY or LOCAL, not {command!r}")
    if family not in _V2_FAMILY_BYTES:
        raise LocalProtocolError(
            f"PROXY v2 family must be TCP4, TCP6, UNIX or UNKNOWN, not {family!r}"
        )
    if command == "LOCAL" and family != "UNKNOWN":
        raise LocalProtocolError("PROXY v2 LOCAL headers carry no addresses: use UNKNOWN")
    block = b""
    if family in ("TCP4", "TCP6"):
        source_ip, source_port = _ip_and_port(family, source, "source")
        destination_ip, destination_port = _ip_and_port(family, destination, "destination")
        block = (
            ipaddress.ip_address(source_ip).packed
            + ipaddress.ip_address(destination_ip).packed
            + source_port.to_bytes(2, "big")
            + destination_port.to_bytes(2, "big")
        )
    elif family == "UNIX":
        block = _encode_unix_path(source, "source") + _encode_unix_path(destination, "destination")
    elif source is not None or destination is not None:
        raise LocalProtocolError(f"PROXY v2 {command} UNKNOWN carries no addresses; pass None")
    for kind, value in tlvs:
        if not 0 <= kind <= 0xFF:
            raise LocalProtocolError(f"PROXY v2 TLV type {kind} is outside 0-255")
        if len(value) > _MAX_U16:
            raise LocalProtocolError(
                f"PROXY v2 TLV of type {kind:#04x} has {len(value)} bytes, more than 65535"
            )
        block += bytes([kind]) + len(value).to_bytes(2, "big") + bytes(value)
    if len(block) > _MAX_U16:
        raise LocalProtocolError(
            f"PROXY v2 header needs {len(block)} bytes after its fixed part, more than 65535"
        )
    version_command = (_V2_VERSION << 4) | (_V2_PROXY if command == "PROXY" else _V2_LOCAL)
    return (
        _V2_SIGNATURE
        + bytes([version_command, _V2_FAMILY_BYTES[family]])
        + len(block).to_bytes(2, "big")
        + block
    )


def _ip_and_port(family: str, address: ProxyAddress, which: str) -> tuple[str, int]:
    """Check an ``(ip, port)`` pair against ``family``; return the canonical IP text and port."""
    if not (
        isinstance(address, tuple)
        and len(address) == 2
        and isinstance(address[0], str)
        and isinstance(address[1], int)
        and not isinstance(address[1], bool)
    ):
        raise LocalProtocolError(f"PROXY {family} {which} must be an (ip, port) tuple")
    ip_text, port = address
    try:
        ip = ipaddress.ip_address(ip_text)
    except ValueError:
        raise LocalProtocolError(f"PROXY {family} {which} {ip_text!r} is not an IP") from None
    if ip.version != (4 if family == "TCP4" else 6):
        raise LocalProtocolError(f"PROXY {family} {which} {ip_text!r} is not IPv{family[3]}")
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        raise LocalProtocolError(f"PROXY {family} {which} {ip_text!r} has a scope id")
    if not 0 <= port <= _MAX_U16:
        raise LocalProtocolError(f"PROXY {family} {which} port {port} is outside 0-65535")
    return str(ip), port


def _encode_unix_path(path: ProxyAddress, which: str) -> bytes:
    """Encode a UNIX path into its 108-byte NUL-padded field."""
    if not isinstance(path, str):
        raise LocalProtocolError(f"PROXY UNIX {which} must be a path string")
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"PROXY UNIX {which} {path!r} cannot be encoded") from None
    if raw.startswith(b"\x00"):
        if raw.endswith(b"\x00") or len(raw) > _UNIX_PATH_SIZE:
            raise LocalProtocolError(
                f"PROXY UNIX abstract {which} {path!r} must be at most {_UNIX_PATH_SIZE} bytes "
                "and not end with NUL"
            )
    elif b"\x00" in raw or len(raw) >= _UNIX_PATH_SIZE:
        raise LocalProtocolError(
            f"PROXY UNIX {which} {path!r} must be at most {_UNIX_PATH_SIZE - 1} bytes without NUL"
        )
    return raw.ljust(_UNIX_PATH_SIZE, b"\x00")
