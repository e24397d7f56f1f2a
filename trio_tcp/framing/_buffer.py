"""The receive buffer that the framers and the I/O layer share (sans-IO: no trio here).

Precedent: h11's ``_receivebuffer.py``. Two rules shape it:

- It never loses bytes. Every method either removes exactly what it returns, or raises and
  leaves the buffer as it was.
- Delimiter searches are linear in the bytes received, however the bytes are chunked. The
  buffer remembers where the last search for a delimiter stopped and resumes there, so feeding
  1 MiB one byte at a time and searching after each byte costs O(1 MiB), not O(1 MiB²).

Storage: ``_data[_pos:]`` are the unread bytes. While whole chunks flow through (the usual
case: each network read holds many frames, or a frame's tail plus the next ones), ``_data``
is the received ``bytes`` object itself and a frame costs one slice copy, with no deletion
(asyncio's ``readuntil`` pays a copy, a delete and a second copy). While one frame grows
across many reads smaller than itself, ``_data`` is a ``bytearray`` and appends are amortised
O(1). Either way every byte is copied a bounded number of times, so feeding stays linear.
"""

from __future__ import annotations

from typing import overload

from .._exceptions import FrameTooLargeError, LineTooLongError

__all__ = ["ReceiveBuffer"]

# How many bytes of a frame an error message quotes.
_QUOTE_BYTES = 32


class ReceiveBuffer:
    """A growable byte buffer: bytes go in with :meth:`feed`, frames come out of the front.

    It has no size limit of its own: each read that searches (:meth:`extract_until`) takes its
    own limit, so a peer can never make one search buffer without bound.

    Args:
      data: initial contents (copied).
    """

    __slots__ = ("_data", "_pos", "_search_delimiter", "_search_start")

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        self._data: bytes | bytearray = bytes(data)
        self._pos = 0  # _data[:_pos] is already consumed
        # No occurrence of _search_delimiter starts before _pos + _search_start.
        self._search_delimiter = b""
        self._search_start = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` (any bytes-like object) to the end of the buffer."""
        if not data:
            return
        buf = self._data
        pos = self._pos
        unread = len(buf) - pos
        if not unread:
            self._data = data if type(data) is bytes else bytes(data)
            self._pos = 0
        elif unread <= len(data):
            # Copy the short tail once, together with the new chunk: at most 2x its size.
            with memoryview(buf) as view:
                self._data = b"".join((view[pos:], data))
            self._pos = 0
        elif isinstance(buf, bytearray):
            if pos:
                del buf[:pos]  # amortised O(1): CPython moves the start (bpo-19087)
                self._pos = 0
            buf += data
        else:
            # A frame is outgrowing the reads that deliver it: switch to appending.
            with memoryview(buf) as view:
                grown = bytearray(view[pos:])
            grown += data
            self._data = grown
            self._pos = 0

    def __len__(self) -> int:
        """The number of unread bytes."""
        return len(self._data) - self._pos

    def __bool__(self) -> bool:
        """True if any unread bytes are buffered."""
        return len(self._data) > self._pos

    def __bytes__(self) -> bytes:
        """A copy of the unread bytes (the buffer is not changed)."""
        return bytes(self._data[self._pos :])

    def __repr__(self) -> str:
        head = self[:_QUOTE_BYTES]
        more = "..." if len(self) > _QUOTE_BYTES else ""
        return f"<ReceiveBuffer {len(self)} bytes: {head!r}{more}>"

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> bytes: ...
    def __getitem__(self, index: int | slice) -> int | bytes:
        """Peek without removing: ``buffer[i]`` is one byte as an int, ``buffer[i:j]`` a copy.

        Raises:
          IndexError: an integer index is out of range.
        """
        pos = self._pos
        size = len(self._data) - pos
        if isinstance(index, slice):
            start, stop, step = index.indices(size)
            return bytes(self._data[pos + start : pos + stop : step])
        if not -size <= index < size:
            raise IndexError("ReceiveBuffer index out of range")
        return self._data[pos + index if index >= 0 else pos + size + index]

    def _consume(self, end: int) -> None:
        """Mark ``_data[:end]`` consumed; drop the storage once everything is."""
        if end >= len(self._data):
            self._data = b""
            self._pos = 0
        else:
            self._pos = end

    def extract(self, count: int) -> bytes:
        """Remove and return the first ``count`` bytes.

        Raises:
          ValueError: ``count`` is negative or more than ``len(self)``.
        """
        data = self._data
        pos = self._pos
        if not 0 <= count <= len(data) - pos:
            raise ValueError(f"cannot extract {count} bytes from a buffer of {len(self)}")
        end = pos + count
        out = data[pos:end]
        self._consume(end)
        # Bytes already searched stay searched: only shift the remembered position.
        remaining = self._search_start - count
        self._search_start = remaining if remaining > 0 else 0
        return out if type(out) is bytes else bytes(out)

    def maybe_extract(self, count: int) -> bytes | None:
        """Remove and return the first ``count`` bytes, or ``None`` if fewer are buffered.

        Raises:
          ValueError: ``count`` is negative.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, not {count}")
        if count > len(self._data) - self._pos:
            return None
        return self.extract(count)

    def extract_at_most(self, count: int) -> bytes:
        """Remove and return up to ``count`` bytes (all of them if fewer are buffered).

        Raises:
          ValueError: ``count`` is negative.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, not {count}")
        unread = len(self._data) - self._pos
        return self.extract_all() if count >= unread else self.extract(count)

    def extract_all(self) -> bytes:
        """Remove and return every buffered byte (``b""`` if empty)."""
        data = self._data
        out = data[self._pos :] if self._pos else data
        self._data = b""
        self._pos = 0
        self._search_start = 0
        return out if type(out) is bytes else bytes(out)

    def _extract_frame(self, frame_size: int, total: int) -> bytes:
        """Remove ``total`` bytes and return the first ``frame_size`` of them, copied once.

        The line framer's hot path: ``total`` covers the line and its ending, found by
        :meth:`_find_delimiter`, so no bounds check is needed and the search state resets.
        """
        data = self._data
        pos = self._pos
        out = data[pos : pos + frame_size]
        end = pos + total
        if end >= len(data):
            self._data = b""
            self._pos = 0
        else:
            self._pos = end
        self._search_start = 0
        return out if type(out) is bytes else bytes(out)

    def _find_delimiter(
        self, delimiter: bytes, max_bytes: int, error: type[FrameTooLargeError]
    ) -> int | None:
        """Where the first ``delimiter`` starts, i.e. the length of the frame before it.

        The search of :meth:`extract_until` (see there; the arguments are not validated),
        but nothing is removed: the line framer uses it to strip the line ending while copying
        the line only once. Returns ``None`` if the delimiter has not arrived yet and the frame
        may still fit.
        """
        data = self._data
        pos = self._pos
        start = self._search_start if delimiter == self._search_delimiter else 0
        # A delimiter starting after max_bytes ends a frame over the limit: never scan past it,
        # so a huge buffer with a far-away delimiter costs O(max_bytes), not O(buffer).
        window_end = max_bytes + len(delimiter)
        index = data.find(delimiter, pos + start, pos + window_end)
        if index != -1:
            return index - pos
        unread = len(data) - pos
        if unread < window_end:
            # A delimiter may still start in the last len(delimiter) - 1 bytes.
            self._search_delimiter = delimiter
            resume = unread - len(delimiter) + 1
            self._search_start = resume if resume > 0 else 0
            return None
        # Error path: say how long the frame really is when the delimiter is further on.
        # The search state is left alone, so the buffer is exactly as it was.
        found = data.find(delimiter, pos + max_bytes + 1)
        frame_size = unread if found == -1 else found - pos
        where = f"{delimiter!r} after" if found != -1 else f"no {delimiter!r} in"
        what = "line" if issubclass(error, LineTooLongError) else "frame"
        raise error(
            f"{what} exceeds the limit of {max_bytes} bytes: {where} {frame_size} bytes, "
            f"starting {self[:_QUOTE_BYTES]!r}",
            limit=max_bytes,
            size=frame_size,
        )

    def extract_until(
        self,
        delimiter: bytes,
        *,
        max_bytes: int,
        error: type[FrameTooLargeError] = FrameTooLargeError,
    ) -> bytes | None:
        """Remove and return the bytes up to and including the first ``delimiter``.

        The frame (the bytes before the delimiter) may be at most ``max_bytes`` long. Returns
        ``None`` if the delimiter has not arrived yet: call again after :meth:`feed`. The search
        resumes where the previous one for the same delimiter stopped, so repeated calls cost
        time linear in the bytes received in all.

        Args:
          delimiter: the non-empty byte string that ends a frame.
          max_bytes: the largest frame accepted, not counting the delimiter.
          error: the class raised when the frame is too long; the line reader passes
            :class:`~trio_tcp.LineTooLongError`.

        Raises:
          FrameTooLargeError: (or ``error``) the delimiter is more than ``max_bytes`` bytes in,
            or ``max_bytes + len(delimiter)`` bytes are buffered without it, so the frame is
            certainly too long. ``.limit`` is ``max_bytes``; ``.size`` is the frame's length if
            the delimiter is buffered, else the number of bytes buffered. The buffer is left
            unchanged: nothing is lost.
          ValueError: ``delimiter`` is empty or ``max_bytes`` is negative.
        """
        if not delimiter:
            raise ValueError("the delimiter must not be empty")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        index = self._find_delimiter(delimiter, max_bytes, error)
        if index is None:
            return None
        end = index + len(delimiter)
        return self._extract_frame(end, end)

    def extract_line(
        self,
        delimiter: bytes,
        *,
        max_length: int,
        strip_cr: bool = False,
        keep_ends: bool = False,
    ) -> bytes | None:
        """Remove and return the first line ended by ``delimiter``, without its ending.

        Returns ``None`` if the delimiter has not arrived yet (the search resumes where it
        stopped next time, as in :meth:`extract_until`).

        Args:
          delimiter: the non-empty byte string that ends a line.
          max_length: the longest line accepted, not counting its ending.
          strip_cr: a ``b"\\r"`` right before the delimiter is part of the ending (and
            not counted in the line's length): ``b"hi\\r\\n"`` gives ``b"hi"``.
          keep_ends: return the line with the ending it arrived with.

        Raises:
          LineTooLongError: the line is longer than ``max_length``, or that many bytes (plus
            room for the ending) arrived without a delimiter. The buffer is unchanged.
        """
        data = self._data
        pos = self._pos
        size_of_delimiter = len(delimiter)
        # A b"\n" line may carry one b"\r" beyond the limit: it is part of the ending.
        max_bytes = max_length + 1 if strip_cr else max_length
        window = max_bytes + size_of_delimiter
        # The common case inline (a line is buffered, well within the limit): one find and
        # one slice, no further calls. Anything else takes the general path below.
        resume = self._search_start
        if resume and self._search_delimiter == delimiter:
            index = data.find(delimiter, pos + resume, pos + window)
        else:
            index = data.find(delimiter, pos, pos + window)
        if index == -1:
            unread = len(data) - pos
            if unread < window:
                # Not here yet: remember where to resume (a delimiter may still start in
                # the last len(delimiter) - 1 bytes), so the next search is not a rescan.
                self._search_delimiter = delimiter
                resume = unread - size_of_delimiter + 1
                self._search_start = resume if resume > 0 else 0
                return None
        elif not keep_ends:
            end = index + size_of_delimiter
            if strip_cr and index > pos and data[index - 1] == 0x0D:
                index -= 1
            if index - pos <= max_length:
                line = data[pos:index]
                if end >= len(data):
                    self._data = b""
                    self._pos = 0
                else:
                    self._pos = end
                self._search_start = 0
                return line if type(line) is bytes else bytes(line)
        try:
            found = self._find_delimiter(delimiter, max_bytes, LineTooLongError)
        except LineTooLongError as exc:
            # Report the limit the caller set, not the one widened for a b"\r".
            raise self._line_too_long(delimiter, max_length, strip_cr, exc.size) from None
        if found is None:
            return None
        total = found + size_of_delimiter
        # The line's length without its ending: the b"\r" of a b"\r\n" does not count.
        size = found - 1 if strip_cr and found and data[pos + found - 1] == 0x0D else found
        if size > max_length:
            raise self._line_too_long(delimiter, max_length, strip_cr, found)
        return self._extract_frame(total if keep_ends else size, total)

    def _line_too_long(
        self, delimiter: bytes, max_length: int, strip_cr: bool, frame_size: int
    ) -> LineTooLongError:
        """The error for a line of ``frame_size`` bytes before its delimiter, or without one
        in ``frame_size`` buffered bytes (``frame_size == len(self)``)."""
        found = frame_size < len(self)
        size = frame_size
        if found and strip_cr and size and self[size - 1] == 0x0D:
            size -= 1
        what = f"line of {size} bytes" if found else f"no {delimiter!r} in {size} bytes"
        return LineTooLongError(
            f"{what} exceeds max_line_length={max_length}, starting {self[:32]!r}",
            limit=max_length,
            size=size,
        )
