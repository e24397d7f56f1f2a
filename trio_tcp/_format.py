"""Bytes rendered the way Node.js prints a Buffer: ``<Buffer 0c 22>``."""

from __future__ import annotations

__all__ = ["INSPECT_MAX_BYTES", "format_buffer"]

# Node's `buffer.INSPECT_MAX_BYTES`: how many bytes `util.inspect(buffer)` shows before it
# summarises the rest as "... N more bytes".
INSPECT_MAX_BYTES = 50


def format_buffer(data: bytes | bytearray | memoryview) -> str:
    """Render ``data`` exactly as Node.js prints a ``Buffer``.

    ``b"\\x0c\\x22"`` becomes ``<Buffer 0c 22>``, ``b""`` becomes ``<Buffer >``, and past 50
    bytes the first 50 are shown followed by `` ... N more bytes`` (``byte`` when N is 1),
    following ``Buffer.prototype[util.inspect.custom]`` in Node's ``lib/buffer.js``.

    Raises:
      TypeError: ``data`` is not a bytes-like object (a ``str``, say).
    """
    if isinstance(data, str):
        raise TypeError("format_buffer() takes bytes, not str (encode it first)")
    view = memoryview(data).cast("B")
    shown = view[:INSPECT_MAX_BYTES].hex(" ")
    remaining = len(view) - INSPECT_MAX_BYTES
    if remaining > 0:
        shown += f" ... {remaining} more byte{'s' if remaining > 1 else ''}"
    return f"<Buffer {shown}>"
