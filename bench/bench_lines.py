"""Line reading: trio_tcp against asyncio's readline and anyio's receive_until, in memory.

    python bench/bench_lines.py [--lines N] [--repeat R] [--chunk BYTES] [--seed S]

Every reader decodes the same data: N lines of 40-80 random printable bytes (fixed seed),
delivered in chunks of ``--chunk`` bytes (64 KiB, one network read) by an in-memory stream:

  trio_tcp receive_line   Connection.receive_line() over a trio Stream yielding the chunks
  trio_tcp lines()        ``async for line in conn.lines()`` over the same
  asyncio readline        StreamReader.readline(); a feeder task feed_data()s a chunk each
                          time the reader waits (how a transport drives it)
  anyio receive_until     BufferedByteReceiveStream.receive_until(b"\\n") over a memory object
                          stream of the chunks (asyncio backend)
  LineFramer.feed         our sans-IO framers directly, no I/O at all; the length-prefixed and
  LengthPrefixFramer.feed netstring rows decode the same lines encoded in their framing
  NetstringFramer.feed

Each reader checks the line count and total length it decoded. Prints lines per second, best
of R runs, and the ratio to asyncio's readline. A benchmark: figures, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version

import anyio
import trio
from anyio.streams.buffered import BufferedByteReceiveStream

from trio_tcp import Connection
from trio_tcp.framing import LengthPrefixFramer, LineFramer, NetstringFramer

CHUNK = 64 * 1024


def make_lines(count: int, seed: int) -> list[bytes]:
    """``count`` lines of 40-80 printable ASCII bytes, without endings."""
    rng = random.Random(seed)
    alphabet = bytes(range(0x20, 0x7F))
    return [bytes(rng.choices(alphabet, k=rng.randint(40, 80))) for _ in range(count)]


def chunked(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into ``size``-byte chunks."""
    return [data[i : i + size] for i in range(0, len(data), size)]


class ChunkStream(trio.abc.Stream):
    """A trio Stream whose peer sent ``chunks`` and then closed (a checkpoint per read)."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = iter(chunks)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The next chunk, or b"" at the end."""
        await trio.lowlevel.checkpoint()
        return next(self._chunks, b"")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Not used."""
        raise NotImplementedError

    async def wait_send_all_might_not_block(self) -> None:
        """Not used."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Nothing to close."""


Result = tuple[int, int]  # lines, total length of the lines


def run_trio_receive_line(chunks: Sequence[bytes]) -> Result:
    """Connection.receive_line until EndOfStream."""

    async def main() -> Result:
        conn = Connection(ChunkStream(chunks))
        count = total = 0
        receive_line = conn.receive_line
        while True:
            try:
                line = await receive_line()
            except EOFError:
                return count, total
            count += 1
            total += len(line)

    return trio.run(main)


def run_trio_lines(chunks: Sequence[bytes]) -> Result:
    """``async for line in conn.lines()``."""

    async def main() -> Result:
        conn = Connection(ChunkStream(chunks))
        count = total = 0
        async for line in conn.lines():
            count += 1
            total += len(line)
        return count, total

    return trio.run(main)


def run_asyncio_readline(chunks: Sequence[bytes]) -> Result:
    """StreamReader.readline, fed one chunk whenever the reader waits."""

    async def main() -> Result:
        reader = asyncio.StreamReader()

        async def feeder() -> None:
            for chunk in chunks:
                reader.feed_data(chunk)
                await asyncio.sleep(0)
            reader.feed_eof()

        task = asyncio.create_task(feeder())
        count = total = 0
        readline = reader.readline
        while line := await readline():
            count += 1
            total += len(line) - 1
        await task
        return count, total

    return asyncio.run(main())


def run_anyio_receive_until(chunks: Sequence[bytes]) -> Result:
    """anyio BufferedByteReceiveStream.receive_until over a memory object stream."""

    async def main() -> Result:
        send, receive = anyio.create_memory_object_stream[bytes](len(chunks) + 1)
        for chunk in chunks:
            send.send_nowait(chunk)
        send.close()
        buffered = BufferedByteReceiveStream(receive)
        count = total = 0
        receive_until = buffered.receive_until
        while True:
            try:
                line = await receive_until(b"\n", 65536)
            except anyio.IncompleteRead:
                return count, total
            count += 1
            total += len(line)

    return anyio.run(main, backend="asyncio")


def run_framer(
    make: Callable[[], LineFramer | LengthPrefixFramer | NetstringFramer],
) -> Callable[[Sequence[bytes]], Result]:
    """Feed the chunks straight into a framer, then b"" for end of stream."""

    def run(chunks: Sequence[bytes]) -> Result:
        framer = make()
        count = total = 0
        for chunk in [*chunks, b""]:
            for frame in framer.feed(chunk):
                count += 1
                total += len(frame)
        return count, total

    return run


def timed(
    run: Callable[[Sequence[bytes]], Result], chunks: Sequence[bytes], expected: Result
) -> float:
    """Seconds for one run; exits if the run decoded the wrong lines."""
    start = time.perf_counter()
    result = run(chunks)
    elapsed = time.perf_counter() - start
    if result != expected:
        sys.exit(f"wrong result from {run.__name__}: {result} != {expected}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> None:
    """Run every reader and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000, help="default 200000")
    parser.add_argument("--repeat", type=int, default=5, help="best of R runs (default 5)")
    parser.add_argument("--chunk", type=int, default=CHUNK, help="bytes per chunk (64 KiB)")
    parser.add_argument("--seed", type=int, default=3, help="random seed (default 3)")
    args = parser.parse_args(argv)

    lines = make_lines(args.lines, args.seed)
    expected = (len(lines), sum(map(len, lines)))
    line_chunks = chunked(b"".join(line + b"\n" for line in lines), args.chunk)
    length = LengthPrefixFramer(4)
    netstring = NetstringFramer()
    length_chunks = chunked(b"".join(map(length.encode, lines)), args.chunk)
    netstring_chunks = chunked(b"".join(map(netstring.encode, lines)), args.chunk)

    rows: list[tuple[str, Callable[[Sequence[bytes]], Result], list[bytes]]] = [
        ("asyncio StreamReader.readline", run_asyncio_readline, line_chunks),
        ("trio_tcp Connection.receive_line", run_trio_receive_line, line_chunks),
        ("trio_tcp Connection.lines()", run_trio_lines, line_chunks),
        ("anyio receive_until (asyncio)", run_anyio_receive_until, line_chunks),
        ("trio_tcp LineFramer.feed", run_framer(LineFramer), line_chunks),
        ("trio_tcp LengthPrefixFramer(4).feed", run_framer(LengthPrefixFramer), length_chunks),
        ("trio_tcp NetstringFramer.feed", run_framer(NetstringFramer), netstring_chunks),
    ]
    size = sum(map(len, line_chunks))
    print(
        f"{len(lines)} lines, {size} bytes in {len(line_chunks)} chunks of {args.chunk} B, "
        f"best of {args.repeat}; Python {sys.version.split()[0]}, trio {trio.__version__}, "
        f"anyio {version('anyio')}"
    )
    # Round robin (every reader once per round, best of the rounds), so a burst of load on
    # the machine hits all readers alike instead of one row.
    best = [float("inf")] * len(rows)
    for _ in range(args.repeat):
        for i, (_name, run, chunks) in enumerate(rows):
            best[i] = min(best[i], timed(run, chunks, expected))
    print(f"{'reader':40} {'lines/s':>12} {'vs asyncio':>11}")
    baseline = expected[0] / best[0]
    for (name, _run, _chunks), seconds in zip(rows, best, strict=True):
        rate = expected[0] / seconds
        print(f"{name:40} {rate:12,.0f} {rate / baseline:10.2f}x")


if __name__ == "__main__":
    main()
