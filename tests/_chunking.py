"""Feed a byte string to a framer in a chosen chunking (h11 ``tests/test_io.py`` style).

Every framer test runs the same input whole, one byte at a time, and in random chunks from a
fixed seed; ``SPLITS`` names those three so tests can be parametrized over them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, SupportsIndex, TypeVar, overload

from trio_tcp.framing import Framer, ReceiveBuffer

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

T = TypeVar("T")

Split = Callable[[bytes], list[bytes]]


def whole(data: bytes) -> list[bytes]:
    """The input as one chunk (no chunk at all for ``b""``)."""
    return [data] if data else []


def bytewise(data: bytes) -> list[bytes]:
    """The input one byte at a time."""
    return [data[i : i + 1] for i in range(len(data))]


def random_chunks(data: bytes, seed: int = 20240611) -> list[bytes]:
    """The input cut into chunks of 1 to 7 bytes, the cuts drawn from a fixed seed."""
    rng = random.Random(seed)
    chunks = []
    i = 0
    while i < len(data):
        size = rng.randint(1, 7)
        chunks.append(data[i : i + size])
        i += size
    return chunks


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """The input cut at the given offsets (out-of-range or repeated offsets are ignored)."""
    points = sorted({cut for cut in cuts if 0 < cut < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


SPLITS: list[Split] = [whole, bytewise, random_chunks]
SPLIT_IDS = ["whole", "bytewise", "random"]


def feed_chunks(framer: Framer[T], chunks: Iterable[bytes], *, eof: bool = True) -> list[T]:
    """Feed ``chunks`` through ``framer.feed`` (then ``b""`` if ``eof``); return all frames."""
    frames: list[T] = []
    for chunk in chunks:
        assert chunk, "an empty chunk would mean end of stream"
        frames += framer.feed(chunk)
    if eof:
        frames += framer.feed(b"")
    return frames


def parse_chunks(
    framer: Framer[T], chunks: Iterable[bytes], *, eof: bool = True
) -> tuple[list[T], ReceiveBuffer]:
    """Drive ``framer.parse`` on an outside buffer, as the I/O layer does.

    Returns the frames and the buffer, which then holds the bytes no frame used.
    """
    buffer = ReceiveBuffer()
    frames: list[T] = []
    for chunk in chunks:
        buffer.feed(chunk)
        while (frame := framer.parse(buffer)) is not None:
            frames.append(frame)
    if eof:
        framer.check_eof(buffer)
    return frames, buffer


def decode_outcome(
    make_framer: Callable[[], Framer[T]], chunks: Iterable[bytes]
) -> tuple[list[T], type[Exception] | None]:
    """The frames ``feed`` yields up to end of stream, and the error type it ends with, if any.

    Frames returned before an error are kept, so outcomes of different chunkings compare.
    """
    framer = make_framer()
    frames: list[T] = []
    try:
        for chunk in [*chunks, b""]:
            frames += framer.feed(chunk)
    except Exception as exc:
        return frames, type(exc)
    return frames, None


class CountingBytearray(bytearray):
    """A bytearray that counts its work: bytes scanned by ``find`` and bytes copied by slices.

    Put one in a :class:`ReceiveBuffer` with :func:`counting_buffer` to check that a reader's
    cost is linear in the bytes received (counting work, never time).
    """

    work = 0

    def find(
        self,
        sub: ReadableBuffer | SupportsIndex,
        start: SupportsIndex | None = None,
        end: SupportsIndex | None = None,
        /,
    ) -> int:
        """``bytearray.find``, adding the length of the searched range to ``work``."""
        begin, stop, _ = slice(start, end).indices(len(self))
        self.work += max(0, stop - begin)
        return super().find(sub, start, end)

    @overload
    def __getitem__(self, key: SupportsIndex, /) -> int: ...
    @overload
    def __getitem__(self, key: slice, /) -> bytearray: ...
    def __getitem__(self, key: SupportsIndex | slice, /) -> int | bytearray:
        """``bytearray[key]``, adding the length of a copied slice to ``work``."""
        if isinstance(key, slice):
            copied = super().__getitem__(key)
            self.work += len(copied)
            return copied
        return super().__getitem__(key)


class CountingReceiveBuffer(ReceiveBuffer):
    """A ReceiveBuffer whose bytes live in a :class:`CountingBytearray`.

    ``bytes(buffer)`` copies count as work too, so a reader that copies the whole buffer on
    every call shows up as quadratic.
    """

    def __init__(self) -> None:
        super().__init__()
        self._data = self.counter = CountingBytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append into the counting bytearray (the buffer's own append mode, always)."""
        counter = self.counter
        if self._data is not counter:  # everything was consumed and the storage dropped
            counter.clear()
        elif self._pos:
            del counter[: self._pos]
        self._pos = 0
        counter += data
        self._data = counter

    def __bytes__(self) -> bytes:
        """A copy of the unread bytes, counted as work."""
        self.counter.work += len(self)
        return super().__bytes__()
