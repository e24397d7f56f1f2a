"""format_buffer renders bytes exactly as Node.js prints a Buffer."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from trio_tcp import format_buffer


def test_tutorial_bytes() -> None:
    """The tutorial's bytes 12 and 34 print as <Buffer 0c 22>."""
    assert format_buffer(bytes([12, 34])) == "<Buffer 0c 22>"


def test_empty() -> None:
    """An empty buffer keeps Node's trailing space: <Buffer >."""
    assert format_buffer(b"") == "<Buffer >"


def test_exactly_fifty_bytes_shows_all() -> None:
    """Fifty bytes are all shown, with no summary."""
    assert format_buffer(bytes(range(50))) == "<Buffer " + bytes(range(50)).hex(" ") + ">"


def test_one_more_byte_is_singular() -> None:
    """Past 50 bytes, one extra byte is summarised as '1 more byte'."""
    assert format_buffer(bytes(51)).endswith(" 00 ... 1 more byte>")


def test_many_more_bytes_plural() -> None:
    """Past 50 bytes the rest is counted: '... 950 more bytes'."""
    text = format_buffer(bytes(range(256)) * 4)
    assert text.startswith("<Buffer 00 01 02 ")
    assert text.endswith(" 31 ... 974 more bytes>")


def test_bytearray_and_memoryview() -> None:
    """Any bytes-like object works the same as bytes."""
    assert format_buffer(bytearray(b"\xff\x00")) == "<Buffer ff 00>"
    assert format_buffer(memoryview(b"\xab")) == "<Buffer ab>"


def test_str_is_a_type_error() -> None:
    """A str is refused with a hint to encode it."""
    with pytest.raises(TypeError, match="encode"):
        format_buffer("hi")  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_matches_node_itself() -> None:
    """For sizes 0-120, our output equals what node's util.inspect prints."""
    sizes = [0, 1, 2, 49, 50, 51, 52, 100, 120]
    script = (
        "const sizes=JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(sizes.map(n=>require('util').inspect("
        "Buffer.from(Array.from({length:n},(_,i)=>(i*37)%256))))))"
    )
    out = subprocess.run(
        ["node", "-e", script, json.dumps(sizes)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    expected = json.loads(out)
    ours = [format_buffer(bytes((i * 37) % 256 for i in range(n))) for n in sizes]
    assert ours == expected
