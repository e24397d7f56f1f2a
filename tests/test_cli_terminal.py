"""`terminal_safe`: what `serve --mode lines` prints of a peer's line (a pure function)."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from trio_tcp._cli import terminal_safe

# Characters a peer could use to move the cursor, rewrite a line or reorder text.
_DANGEROUS = {
    "\u2028",
    "\u2029",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
}


def test_printable_utf8_prints_as_itself() -> None:
    """Ordinary text, accents and emoji are untouched."""
    assert terminal_safe("héllo wörld ✓ 🙂 #7 [x]".encode()) == "héllo wörld ✓ 🙂 #7 [x]"


def test_controls_and_bad_bytes_are_escaped() -> None:
    """ESC, BEL, CR, VT, FF, DEL, C1, NUL, invalid UTF-8 and the backslash itself."""
    assert terminal_safe(b"\x1b[2J\x07\r\x0b\x0c\x7f\xc2\x9b\x00\xff\\") == (
        "\\x1b[2J\\x07\\r\\x0b\\x0c\\x7f\\x9b\\x00\\xff\\\\"
    )
    assert terminal_safe(b"a\tb\nc") == "a\\tb\\nc"
    assert terminal_safe("\u202eevil\u2028".encode()) == "\\u202eevil\\u2028"


@given(st.binary(max_size=200))
def test_any_bytes_print_as_one_safe_line(data: bytes) -> None:
    """No control character, no line break, no bidi override survives; the text is valid."""
    text = terminal_safe(data)
    assert all(unicodedata.category(c) != "Cc" for c in text)
    assert not _DANGEROUS.intersection(text)
    text.encode("utf-8")  # no lone surrogates left


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=100))
def test_escaping_is_unambiguous(text: str) -> None:
    """A literal backslash sequence and an escaped byte never print the same."""
    data = text.encode()
    assert terminal_safe(data + b"\x1b") != terminal_safe(data + b"\\x1b")
