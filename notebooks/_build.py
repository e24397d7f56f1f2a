"""Write the teaching notebooks from the Python source below (outputs empty).

    python notebooks/_build.py          # writes notebooks/NN-*.ipynb without outputs
    make notebooks                      # executes them and saves the outputs of a real run

Each notebook is a list of cells: ``md(...)`` for the explanation that comes first, ``code(...)``
for what shows it. Edit here, not in the .ipynb files, then run both commands.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
Cell = tuple[str, str]


def md(text: str) -> Cell:
    return ("markdown", textwrap.dedent(text).strip())


def code(text: str) -> Cell:
    return ("code", textwrap.dedent(text).strip())


# The set-up every notebook starts with: one background Trio run that outlives cells.
SETUP = code(
    """
    import functools

    import matplotlib.pyplot as plt
    import trio

    import trio_tcp
    import trio_tcp.notebook as tnb

    trio_bg = tnb.start()  # safe to re-run: it replaces the previous background run
    """
)

CLOSE = code(
    """
    trio_bg.close()  # cancels every background task and closes every socket
    print("background run closed:", trio_bg.closed)
    """
)

# ---------------------------------------------------------------------------------------------
NB1: list[Cell] = [
    md(
        """
        # 1 · Your first TCP server

        The Node.js tutorial this project starts from has two programs. A **server** listens on
        `127.0.0.1:3099` and prints every chunk of bytes it receives, the way Node prints a
        `Buffer`. A **sender** connects and writes two bytes, 12 and 34. The server prints

            <Buffer 0c 22>

        (12 is `0x0c`, 34 is `0x22`). This notebook tells that story twice: first with plain
        Trio, then with `trio_tcp`, so you can see what the library adds.

        A few words first:

        * **127.0.0.1** is *loopback*: an address that never leaves your machine. Everything in
          these notebooks talks over it.
        * A **port** is a number that says which program on the machine a connection is for.
          The tutorial uses 3099; here we ask for port **0**, which means "any free port", so a
          notebook never fails because something else already uses 3099.
        * A **connection** is a two-way byte stream between one client and the server. The
          server *accepts* connections; each one is a separate conversation.

        Trio runs inside Jupyter through `trio_tcp.notebook`: one Trio run lives in a
        background thread, so a server started in one cell keeps serving while later cells
        run. `await trio_bg.run(fn, ...)` runs `fn` there and brings its result (and its
        prints) back to the cell.
        """
    ),
    SETUP,
    md(
        """
        ## With plain Trio

        `trio.serve_tcp(handler, port)` listens and, for every connection it accepts, starts
        `handler(stream)` **as its own task in a nursery**. That is the big difference from
        Node: Node hands you *events* (`'connection'`, then `'data'` callbacks on a socket);
        Trio hands you a *task* per connection that reads in a loop, top to bottom, like a
        little program. When the handler returns, Trio closes the stream.

        `async for chunk in stream` gives each chunk as it arrives and ends when the client
        closes its side.
        """
    ),
    code(
        """
        def as_node_buffer(data: bytes) -> str:
            return "<Buffer " + data.hex(" ") + ">"


        async def print_chunks(stream: trio.SocketStream) -> None:
            async for chunk in stream:
                print("server got", as_node_buffer(chunk))


        listeners = await trio_bg.start(
            functools.partial(trio.serve_tcp, print_chunks, 0, host="127.0.0.1")
        )
        plain_port = listeners[0].socket.getsockname()[1]
        print(f"plain Trio server listening on 127.0.0.1:{plain_port}")
        """
    ),
    md(
        """
        The sender: `trio.open_tcp_stream` connects, `send_all` writes the two bytes. Then it
        *half-closes* (`send_eof`: "I will send nothing more") and waits for the server to
        close its side, so we know the server has printed before the cell ends.
        """
    ),
    code(
        """
        async def send_12_34(port: int) -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(bytes([12, 34]))
                await stream.send_eof()
                assert await stream.receive_some() == b""  # the server closed: it is done


        await trio_bg.run(send_12_34, plain_port)
        """
    ),
    md(
        """
        ## With trio_tcp

        The same story. `trio_tcp.serve` is started the same way, but gives the handler a
        `trio_tcp.Connection`, and `trio_tcp.format_buffer` prints exactly what Node prints.
        What the library adds you cannot see here yet (later notebooks show it): a `Server`
        object with the port, live connections and counters; buffered reads of lines and
        frames; a crashing handler that closes only its own connection; idle timeouts; and a
        graceful shutdown.
        """
    ),
    code(
        """
        events = []  # (who, what, trio time): a log to draw afterwards


        async def handler(conn: trio_tcp.Connection) -> None:
            events.append(("server", "accepted", trio.current_time()))
            async for chunk in conn:
                events.append(("server", "chunk", trio.current_time()))
                print("server got", trio_tcp.format_buffer(chunk))
            events.append(("server", "end of stream", trio.current_time()))


        server = await trio_bg.start(functools.partial(trio_tcp.serve, handler, 0))
        print(server)
        """
    ),
    code(
        """
        async def sender(port: int) -> None:
            events.append(("client", "connect", trio.current_time()))
            async with await trio_tcp.open_connection("127.0.0.1", port) as conn:
                events.append(("client", "connected", trio.current_time()))
                await conn.send_all(bytes([12, 34]))
                events.append(("client", "sent 12, 34", trio.current_time()))
                await conn.send_eof()
                assert await conn.receive_some() == b""
                events.append(("client", "server closed", trio.current_time()))


        await trio_bg.run(sender, server.port)
        stats = server.stats
        print(f"connections accepted: {stats.accepted}, bytes received: {stats.bytes_received}")
        """
    ),
    md(
        """
        ## What happened, in order

        Each dot is one event; the two rows are the two ends of the connection. Time runs left
        to right, in milliseconds since the client started connecting. Notice that the server
        task starts only once the connection is accepted, and ends when the client's
        end-of-stream arrives.
        """
    ),
    code(
        """
        start = min(t for _, _, t in events)
        fig, ax = plt.subplots(figsize=(8, 2.4))
        for row, who in enumerate(["client", "server"]):
            mine = [(what, (t - start) * 1000) for w, what, t in events if w == who]
            ax.plot([ms for _, ms in mine], [row] * len(mine), "o-", color=f"C{row}")
            for i, (what, ms) in enumerate(mine):
                ax.annotate(what, (ms, row), textcoords="offset points",
                            xytext=(0, 8 if i % 2 == 0 else -14), ha="center", fontsize=8)
        ax.set_yticks([0, 1], ["client", "server"])
        ax.set_ylim(-0.7, 1.7)
        ax.set_xlabel("milliseconds")
        ax.set_title("One connection: connect, two bytes, end of stream")
        plt.show()
        """
    ),
    md(
        """
        A real client in another process works too: the server keeps running between cells.
        Here is the plain-`socket` version of the sender (this is what the Node sender does).
        """
    ),
    code(
        """
        import socket

        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(bytes([12, 34]))
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""
        """
    ),
    md(
        """
        Outside a notebook you would write the same thing as a script with `trio.run(main)`,
        or use the command line: `trio-tcp serve` (port 3099, like the tutorial) in one
        terminal and `trio-tcp send` in another; `trio-tcp demo` does both in one process.

        Last cell: shut the background run down, which cancels both servers and closes every
        socket.
        """
    ),
    CLOSE,
]

# ---------------------------------------------------------------------------------------------
NB2: list[Cell] = [
    md(
        """
        # 2 · Bytes, not messages

        TCP delivers a **stream of bytes**, in order, without loss. It does *not* deliver your
        writes one by one: several small writes can arrive as one chunk (they *coalesce*), and
        one big write can arrive as many chunks (it *splits*). Where the chunk boundaries fall
        depends on timing, buffer sizes and the network, not on your program.

        So a server that treats each chunk as one message works in a quick test and breaks
        under load. This notebook makes both effects happen on purpose, then fixes the problem
        with **framing**: an agreement on where one message ends.
        """
    ),
    SETUP,
    md(
        """
        ## A server that records every chunk

        It notes the time and size of each chunk it receives. `reader_delay` makes it wait
        before it starts reading, like a busy server would.
        """
    ),
    code(
        """
        chunks = []  # (trio time, size) of every chunk the server received


        async def recorder(conn: trio_tcp.Connection, *, reader_delay: float = 0.0) -> None:
            await trio.sleep(reader_delay)
            async for chunk in conn:
                chunks.append((trio.current_time(), len(chunk)))


        server = await trio_bg.start(
            functools.partial(trio_tcp.serve, functools.partial(recorder, reader_delay=0.2), 0)
        )


        async def write_all(port: int, pieces: list[bytes]) -> list[tuple[float, int]]:
            writes = []
            async with await trio_tcp.open_connection("127.0.0.1", port) as conn:
                for piece in pieces:
                    await conn.send_all(piece)
                    writes.append((trio.current_time(), len(piece)))
                await conn.send_eof()
                await conn.receive_some()  # wait until the server has read everything
            return writes
        """
    ),
    md(
        """
        ## Coalescing: ten writes, one read

        The client sends ten 5-byte messages, one `send_all` each. The server is busy for
        0.2 s, so by the time it reads, all fifty bytes wait in its socket buffer, and one
        read returns them all.
        """
    ),
    code(
        """
        chunks.clear()
        small_writes = await trio_bg.run(write_all, server.port, [b"hello"] * 10)
        small_reads = list(chunks)
        print("writes:", [size for _, size in small_writes])
        print("reads: ", [size for _, size in small_reads])
        """
    ),
    md(
        """
        ## Splitting: one write, many reads

        Now one `send_all` of 1 MiB to a server that reads at once. A read returns at most
        64 KiB (the receive size), and whatever has arrived so far; the one write arrives as
        many chunks.
        """
    ),
    code(
        """
        await trio_bg.run(server.aclose)  # the next server reads at once
        server = await trio_bg.start(functools.partial(trio_tcp.serve, recorder, 0))
        chunks.clear()
        big_writes = await trio_bg.run(write_all, server.port, [bytes(1 << 20)])
        big_reads = list(chunks)
        print("writes:", [size for _, size in big_writes])
        print(f"reads:  {len(big_reads)} chunks, {min(s for _, s in big_reads)} to "
              f"{max(s for _, s in big_reads)} bytes, {sum(s for _, s in big_reads)} in all")
        """
    ),
    md(
        """
        ## Writes against reads

        Each bar is one write (top) or one read (bottom); its width is the number of bytes.
        Both rows add up to the same total: TCP kept every byte and their order, but not the
        boundaries.
        """
    ),
    code(
        """
        fig, axes = plt.subplots(2, 1, figsize=(9, 3.4))
        for ax, title, writes, reads in [
            (axes[0], "ten 5-byte writes", small_writes, small_reads),
            (axes[1], "one 1 MiB write", big_writes, big_reads),
        ]:
            for row, sizes in [(1, [s for _, s in writes]), (0, [s for _, s in reads])]:
                left = 0
                for i, size in enumerate(sizes):
                    ax.barh(row, size, left=left, color=f"C{i % 2 + 2 * row}", edgecolor="white")
                    left += size
            ax.set_yticks([0, 1], ["reads", "writes"])
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("bytes")
        fig.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        ## Framing: deciding where a message ends

        The fix is a rule both sides follow. Two common ones:

        * **Lines**: every message ends with `\\n` (what the tutorial's next step, a chat
          server, uses; so do SMTP, Redis' inline protocol and many others).
        * **Length prefixes**: every message starts with its length, here as 4 bytes.

        `trio_tcp.framing` holds the rules as *sans-IO* framers: you feed them bytes, they hand
        back complete messages. They never touch a socket, so you can try them with no network
        at all. Feed them the bytes in awkward pieces and the messages still come out whole:
        """
    ),
    code(
        """
        from trio_tcp.framing import LengthPrefixFramer, LineFramer

        lines = LineFramer()
        for piece in [b"hel", b"lo\\nwor", b"ld\\nand a", b" half"]:
            print(f"fed {piece!r:14} -> frames {lines.feed(piece)}")

        prefixed = LengthPrefixFramer(4)
        wire = prefixed.encode(b"hello") + prefixed.encode(b"") + prefixed.encode(b"\\n is fine")
        print("encoded:", wire)
        for i in range(0, len(wire), 3):  # three bytes at a time
            for frame in prefixed.feed(wire[i:i + 3]):
                print("frame:", frame)
        """
    ),
    md(
        """
        ## Buffered reads on a connection

        A `trio_tcp.Connection` keeps a receive buffer, so a handler can ask for what it means
        instead of "whatever arrived":

        * `conn.lines()` / `receive_line()`: the next line,
        * `receive_exactly(n)`: exactly *n* bytes,
        * `frames(framer)` / `receive_frame(framer)`: the next frame of any framer.

        The server below reads a 4-byte length-prefixed greeting, then lines. The client sends
        everything in **one byte per write**, the worst case for a chunk-per-message server;
        the handler still sees whole messages.
        """
    ),
    code(
        """
        async def framed_handler(conn: trio_tcp.Connection) -> None:
            header = await conn.receive_exactly(4)
            greeting = await conn.receive_exactly(int.from_bytes(header, "big"))
            print("greeting:", greeting)
            async for line in conn.lines():
                print("line:", line)
                await conn.send_all(line.upper() + b"\\n")


        await trio_bg.run(server.aclose)
        server = await trio_bg.start(functools.partial(trio_tcp.serve, framed_handler, 0))


        async def one_byte_at_a_time(port: int) -> list[bytes]:
            message = LengthPrefixFramer(4).encode(b"hi there") + b"first line\\nsecond line\\n"
            async with await trio_tcp.open_connection("127.0.0.1", port) as conn:
                for i in range(len(message)):
                    await conn.send_all(message[i:i + 1])
                await conn.send_eof()
                return [line async for line in conn.lines()]


        replies = await trio_bg.run(one_byte_at_a_time, server.port)
        print("client got:", replies)
        """
    ),
    md(
        """
        A read cancelled half-way loses nothing: the bytes that arrived stay in the buffer for
        the next read. And every buffer has a limit (`max_length` for lines, `max_frame_size`
        for length prefixes), so a peer cannot make the server buffer without end; going over
        it raises `trio_tcp.LineTooLongError` or `FrameTooLargeError`.
        """
    ),
    CLOSE,
]

# ---------------------------------------------------------------------------------------------
NB3: list[Cell] = [
    md(
        """
        # 3 · Many clients at once

        `trio_tcp.serve` runs **one task per connection**, all in one nursery. A task waiting
        for its client costs almost nothing, so a thousand idle clients are a thousand sleeping
        tasks, not a thousand threads. When one client is slow, only its task waits.

        This notebook builds the classic next step of the tutorial: a **chat room**. Every line
        a client sends goes to every client. Then it asks what happens when one client reads
        slowly.
        """
    ),
    SETUP,
    md(
        """
        ## The chat room

        The room holds the connections. A handler joins the room, reads lines, and sends each
        one to everybody; when its client leaves, the handler leaves the room. Sending to one
        client at a time, in order, is the simplest thing that works. Two handlers can
        broadcast at the same moment, and a Trio stream refuses a second sender while one is
        sending (`trio.BusyResourceError`), so each member comes with a lock.
        """
    ),
    code(
        """
        room: dict[trio_tcp.Connection, trio.Lock] = {}  # each member, and its send lock


        async def broadcast(text: bytes) -> None:
            for member, lock in list(room.items()):
                try:
                    async with lock:  # two handlers may broadcast at once: one sender at a time
                        await member.send_all(text)
                except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                    # That client went away (Busy: the server is closing it); its task cleans up.
                    room.pop(member, None)


        async def chat(conn: trio_tcp.Connection) -> None:
            name = (await conn.receive_line()).decode()
            room[conn] = trio.Lock()
            try:
                await broadcast(f"* {name} joined\\n".encode())
                async for line in conn.lines():
                    await broadcast(f"{name}: {line.decode()}\\n".encode())
            finally:
                room.pop(conn, None)
                with trio.CancelScope(shield=True):
                    await broadcast(f"* {name} left\\n".encode())


        server = await trio_bg.start(functools.partial(trio_tcp.serve, chat, 0))
        """
    ),
    md(
        """
        Three clients join one after the other, then each says one line. Every member listens
        in its own task (a nursery of our own), so all three hear each line at the same time.
        """
    ),
    code(
        """
        NAMES = ["ada", "bob", "cy"]


        async def conversation(port: int) -> dict[str, list[str]]:
            heard: dict[str, list[str]] = {name: [] for name in NAMES}
            members: dict[str, trio_tcp.Connection] = {}

            async def hear(name: str) -> None:
                heard[name].append((await members[name].receive_line()).decode())

            async def everybody_hears() -> None:
                async with trio.open_nursery() as nursery:
                    for name in members:
                        nursery.start_soon(hear, name)

            for name in NAMES:
                members[name] = await trio_tcp.open_connection("127.0.0.1", port)
                await members[name].send_all(name.encode() + b"\\n")
                await everybody_hears()  # "* name joined"
            for name in NAMES:
                await members[name].send_all(f"hello from {name}\\n".encode())
                await everybody_hears()
            for conn in members.values():
                await conn.aclose()
            return heard


        heard = await trio_bg.run(conversation, server.port)
        for name, lines in heard.items():
            print(f"--- {name} heard:")
            for line in lines:
                print("   ", line)
        """
    ),
    md(
        """
        ## A slow reader in the room

        `send_all` returns once the operating system has taken the bytes. When a client does
        not read, its socket buffers fill up, and then `send_all` **waits**: this is
        *backpressure*, and it is a feature, it keeps a fast sender from piling up memory.

        But our broadcaster sends to one member after another. While it waits for the slow
        member, the fast members get nothing either. Let us measure it: a fast client that
        reads everything, a slow one that reads nothing for one second, and a broadcaster
        that sends 600 lines of 1 KiB to both. (The server's send buffers are made small, as
        on a busy machine, so the effect shows within a second.)
        """
    ),
    code(
        """
        import socket

        LINE = b"x" * 1023 + b"\\n"
        COUNT = 600
        BUFFER = 16 * 1024


        def small_buffers(conn: trio_tcp.Connection) -> None:
            conn.stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)


        async def run_room(send_lines) -> dict[str, list[float]]:
            # A server whose broadcaster calls send_lines([fast, slow]), and two clients that
            # note when each line arrives.
            arrivals: dict[str, list[float]] = {"fast": [], "slow": []}
            members: dict[str, trio_tcp.Connection] = {}
            all_in = trio.Event()

            async def host(conn: trio_tcp.Connection) -> None:
                small_buffers(conn)
                members[(await conn.receive_line()).decode()] = conn
                if len(members) == 2:
                    all_in.set()
                await conn.receive_some()  # until the client leaves

            async def client(name: str, port: int, start_reading: float) -> None:
                async with await trio_tcp.open_connection("127.0.0.1", port) as conn:
                    await conn.send_all(name.encode() + b"\\n")
                    await trio.sleep_until(start_reading)
                    async for _ in conn.lines():
                        arrivals[name].append(trio.current_time() - t0)

            async with trio.open_nursery() as nursery:
                srv = await nursery.start(functools.partial(trio_tcp.serve, host, 0))
                t0 = trio.current_time()
                nursery.start_soon(client, "fast", srv.port, t0)
                nursery.start_soon(client, "slow", srv.port, t0 + 1.0)
                await all_in.wait()
                await send_lines([members["fast"], members["slow"]])
                for member in members.values():
                    await member.send_eof()  # the clients' lines() loops end
                srv.close()
            return arrivals


        async def send_in_turn(members: list[trio_tcp.Connection]) -> None:
            for _ in range(COUNT):
                for member in members:
                    await member.send_all(LINE)


        naive = await trio_bg.run(run_room, send_in_turn)
        print(f"fast client got its last line after {naive['fast'][-1]:.2f} s")
        """
    ),
    md(
        """
        ## One queue per member

        The usual fix: give every member **its own sender task with a bounded queue** (a Trio
        memory channel). The broadcaster only drops a line into each queue. A member whose
        queue is full is too slow to keep up; here we drop that member's line (a real chat
        server might disconnect it instead). Nothing is unbounded, and nobody waits for the
        slowest reader.
        """
    ),
    code(
        """
        QUEUE = 64


        async def send_with_queues(members: list[trio_tcp.Connection]) -> None:
            dropped = [0] * len(members)
            async with trio.open_nursery() as nursery:
                queues = []
                for member in members:
                    send, receive = trio.open_memory_channel[bytes](QUEUE)
                    queues.append(send)

                    async def pump(member=member, receive=receive) -> None:
                        async with receive:
                            async for line in receive:
                                batch = [line]  # and whatever queued up meanwhile: one send
                                while True:
                                    try:
                                        batch.append(receive.receive_nowait())
                                    except (trio.WouldBlock, trio.EndOfChannel):
                                        break
                                await member.send_all(b"".join(batch))

                    nursery.start_soon(pump)
                for _ in range(COUNT):
                    for i, send in enumerate(queues):
                        try:
                            send.send_nowait(LINE)
                        except trio.WouldBlock:
                            dropped[i] += 1
                    await trio.sleep(0)  # let the pumps run between lines
                for send in queues:
                    await send.aclose()  # each pump ends once its queue is empty
            print("lines dropped: fast client", dropped[0], "| slow client", dropped[1])


        queued = await trio_bg.run(run_room, send_with_queues)
        print(f"fast client got its last line after {queued['fast'][-1]:.2f} s")
        """
    ),
    md(
        """
        ## What the fast client saw

        Lines received over time. With the in-turn broadcaster the fast client's line goes
        flat: it waits for the slow one, which starts reading only at 1 s. With a queue per
        member it gets everything at once, and the slow client simply misses the lines its
        full queue could not take.
        """
    ),
    code(
        """
        fig, ax = plt.subplots(figsize=(8, 3.4))
        for label, run, style in [("in turn", naive, "-"), ("queue per member", queued, "--")]:
            for name, color in [("fast", "C0"), ("slow", "C3")]:
                times = run[name]
                ax.plot(times, range(1, len(times) + 1), style, color=color,
                        label=f"{name} client, {label}")
        ax.axvline(1.0, color="grey", lw=0.8)
        ax.annotate("slow client starts reading", (1.0, COUNT * 0.5), xytext=(-5, 0),
                    textcoords="offset points", fontsize=8, ha="right")
        ax.set_xlabel("seconds")
        ax.set_ylabel("lines received")
        ax.legend(fontsize=8, loc="upper center")
        plt.show()
        """
    ),
    CLOSE,
]

# ---------------------------------------------------------------------------------------------
NB4: list[Cell] = [
    md(
        """
        # 4 · Cancellation, timeouts and shutdown

        In Trio, stopping something is always the same move: **cancel its scope**. A timeout
        is a cancel scope with a deadline; closing a server is cancelling its tasks (politely
        first). A cancelled task gets `trio.Cancelled` at its next `await`, runs its `finally`
        blocks (closing its sockets) and is gone, and its parent carries on.

        This notebook shows four ways a connection ends early: a timeout in the client, an idle
        timeout in the server, a handler that crashes, and a graceful shutdown of the server.
        """
    ),
    SETUP,
    md(
        """
        The server reports what it does on the `trio_tcp` logger. Send those records to this
        notebook's output, one short line each (the full traceback is there in a real log).
        """
    ),
    code(
        """
        import logging
        import sys


        class OneLine(logging.Formatter):
            def formatException(self, exc_info) -> str:
                return f"    {exc_info[0].__name__}: {exc_info[1]}"


        log_output = logging.StreamHandler(sys.stdout)
        log_output.setFormatter(OneLine("log: %(message)s"))
        logging.getLogger("trio_tcp").addHandler(log_output)
        logging.getLogger("trio_tcp").setLevel(logging.INFO)
        """
    ),
    md(
        """
        ## Cancel scopes and timeouts

        A server that says nothing, and a client that will not wait more than 0.25 s for it.
        `trio.move_on_after` cancels what is inside and carries on after the block;
        `trio.fail_after` raises `trio.TooSlowError` instead. Either way the wait is over and
        nothing is left running.
        """
    ),
    code(
        """
        async def silent(conn: trio_tcp.Connection) -> None:
            await conn.receive_some()  # waits for the client; never sends


        quiet = await trio_bg.start(functools.partial(trio_tcp.serve, silent, 0))


        async def impatient(port: int) -> None:
            async with await trio_tcp.open_connection("127.0.0.1", port) as conn:
                start = trio.current_time()
                with trio.move_on_after(0.25) as scope:
                    await conn.receive_some()
                waited = trio.current_time() - start
                print(f"move_on_after: cancelled_caught={scope.cancelled_caught}, "
                      f"gave up after {waited:.2f} s")
                try:
                    with trio.fail_after(0.25):
                        await conn.receive_some()
                except trio.TooSlowError:
                    print("fail_after: raised TooSlowError")


        await trio_bg.run(impatient, quiet.port)
        """
    ),
    md(
        """
        ## Idle timeouts

        The server side of the same problem: a client that connects and then says nothing
        holds a connection (and a file descriptor) forever. `serve(..., idle_timeout=0.4)`
        closes any connection that received nothing for 0.4 s. One watchdog task checks every
        connection four times per timeout, so a silent connection is closed between 0.4 and
        0.5 s after its last byte.
        """
    ),
    code(
        """
        async def echo(conn: trio_tcp.Connection) -> None:
            async for chunk in conn:
                await conn.send_all(chunk)


        patient = await trio_bg.start(
            functools.partial(trio_tcp.serve, echo, 0, idle_timeout=0.4)
        )


        async def goes_quiet(port: int) -> float:
            async with await trio_tcp.open_connection("127.0.0.1", port) as conn:
                await conn.send_all(b"one")
                await conn.receive_some()
                await trio.sleep(0.2)  # a 0.2 s pause is fine
                last_byte = trio.current_time()
                await conn.send_all(b"two")
                await conn.receive_some()
                assert await conn.receive_some() == b""  # the server closed the connection
                return trio.current_time() - last_byte


        silence = await trio_bg.run(goes_quiet, patient.port)
        print(f"closed by the server {silence:.2f} s after the client's last message; "
              f"timed_out={patient.stats.timed_out}")
        """
    ),
    md(
        """
        ## A handler that crashes

        Plain `trio.serve_tcp` lets a handler's exception crash the whole server (and every
        other connection with it). `trio_tcp.serve` deliberately differs: the exception is
        logged with its traceback, **only that connection** is closed, and the server keeps
        serving. (Pass `handler_errors="raise"` to get Trio's behaviour, say in tests.)

        This calculator divides. Dividing by zero crashes its handler:
        """
    ),
    code(
        """
        async def calculator(conn: trio_tcp.Connection) -> None:
            async for line in conn.lines():
                a, b = line.split(b"/")
                await conn.send_all(b"%d\\n" % (int(a) // int(b)))


        calc = await trio_bg.start(functools.partial(trio_tcp.serve, calculator, 0))


        async def ask(port: int, *questions: bytes) -> list[bytes]:
            async with await trio_tcp.open_connection("127.0.0.1", port) as conn:
                await conn.send_all(b"".join(q + b"\\n" for q in questions))
                await conn.send_eof()  # no more questions
                return [line async for line in conn.lines()]


        print("first client: ", await trio_bg.run(ask, calc.port, b"84/2", b"1/0", b"9/3"))
        print("second client:", await trio_bg.run(ask, calc.port, b"10/5"))
        print(f"failed={calc.stats.failed}, accepted={calc.stats.accepted}")
        """
    ),
    md(
        """
        The first client got its first answer, then the connection closed (the `9/3` was never
        answered); the second client, a moment later, was served as usual.

        ## Graceful shutdown

        `server.close()` (or `await server.aclose()`, which also waits) shuts down in three
        steps, like websockets and hypercorn do:

        1. stop accepting: the listening socket is closed, new clients are refused;
        2. keep serving every existing connection until its peer ends it; a handler may end
           earlier at a boundary of its protocol, when `conn.is_closing_and_quiet` (closing,
           and nothing from the peer buffered or waiting), and `conn.lines(until_closing=True)`
           stops there by itself;
        3. after `grace_period` seconds, cancel the handlers that are still running (counted
           in `server.stats.cut`); their peers get an end of stream, not a reset.

        Three handlers show three behaviours. A **polite** one echoes lines with
        `until_closing=True`, so it stops at the shutdown (its peer is quiet between lines) and
        says goodbye. A **busy** one is doing a 0.5 s job when the shutdown starts and finishes
        it within the grace period. A **stubborn** one never looks and is cancelled when the
        grace period ends.
        """
    ),
    code(
        """
        GRACE = 0.5
        lifetimes = {}  # role -> (opened, ended, how), in trio time


        async def shutdown_handler(conn: trio_tcp.Connection) -> None:
            role = (await conn.receive_line()).decode()
            opened, how = trio.current_time(), "returned"
            try:
                if role == "polite":
                    async for line in conn.lines(until_closing=True):
                        await conn.send_all(line + b"\\n")
                    await conn.send_all(b"goodbye\\n")
                elif role == "busy":
                    await trio.sleep(0.2)
                    await trio.sleep(0.5)  # the job: 0.2 s to 0.7 s
                    await conn.send_all(b"job done\\n")
                else:
                    await trio.sleep_forever()
            except trio.Cancelled:
                how = "cancelled"
                raise
            finally:
                lifetimes[role] = (opened, trio.current_time(), how)


        graceful = await trio_bg.start(
            functools.partial(trio_tcp.serve, shutdown_handler, 0, grace_period=GRACE)
        )
        """
    ),
    code(
        """
        async def shutdown_story(server: trio_tcp.Server) -> dict:
            t0 = trio.current_time()
            heard = {}

            async def client(role: str) -> None:
                async with await server.connect() as conn:
                    await conn.send_all(role.encode() + b"\\n")
                    heard[role] = [line.decode() async for line in conn.lines()]

            async with trio.open_nursery() as nursery:
                for role in ["polite", "busy", "stubborn"]:
                    nursery.start_soon(client, role)
                await trio.sleep(0.3)
                print(f"t={trio.current_time() - t0:.2f} s  server.aclose(): stop accepting, "
                      f"{GRACE} s grace period")
                await server.aclose()
                print(f"t={trio.current_time() - t0:.2f} s  the server has stopped, "
                      f"cut {server.stats.cut} connection(s)")
            try:
                await trio_tcp.open_connection("127.0.0.1", server.port)
            except OSError as exc:
                print("a new client is refused:", type(exc).__name__)
            for role, (opened, ended, how) in lifetimes.items():
                print(f"{role:8} {how:9} at t={ended - t0:.2f} s; its client heard {heard[role]}")
            return {"t0": t0, "close": t0 + 0.3}


        story = await trio_bg.run(shutdown_story, graceful)
        """
    ),
    md(
        """
        ## Connection lifetimes across the shutdown

        One bar per connection, from its first line to the end of its handler. The polite one
        ends as soon as the shutdown begins, the busy one when its job is done, the stubborn one
        exactly at the end of the grace period.
        """
    ),
    code(
        """
        t0, closed_at = story["t0"], story["close"]
        colors = {"returned": "C2", "cancelled": "C3"}
        fig, ax = plt.subplots(figsize=(8, 2.6))
        for row, role in enumerate(["polite", "busy", "stubborn"]):
            opened, ended, how = lifetimes[role]
            ax.barh(row, ended - opened, left=opened - t0, color=colors[how], height=0.5)
            ax.annotate(how, (ended - t0, row), xytext=(4, -3), textcoords="offset points",
                        fontsize=8)
        ax.axvline(closed_at - t0, color="black", ls="--", lw=1)
        ax.axvline(closed_at - t0 + GRACE, color="C3", ls=":", lw=1)
        ax.text(closed_at - t0, 2.55, " close()", fontsize=8)
        ax.text(closed_at - t0 + GRACE, 2.55, " grace period ends", fontsize=8, color="C3")
        ax.set_yticks(range(3), ["polite", "busy", "stubborn"])
        ax.set_ylim(-0.5, 2.9)
        ax.set_xlim(0, closed_at - t0 + GRACE + 0.25)
        ax.set_xlabel("seconds")
        plt.show()
        """
    ),
    CLOSE,
]

# ---------------------------------------------------------------------------------------------
NB5: list[Cell] = [
    md(
        """
        # 5 · Testing your server

        A server's bugs hide in the cases a quick manual test never hits: writes that arrive
        in odd pieces, a client that vanishes mid-message, a cancellation at an unlucky
        moment. `trio_tcp.testing` makes those cases happen on purpose, fast and repeatably:

        * **memory streams**: a connection pair, or the real server machinery over an
          in-memory listener, with no sockets and no ports;
        * **fault injection**: stream wrappers that re-chunk, delay, reset or end a stream;
        * **the cancellation sweep**: cancel a handler at each of its cancellation points in
          turn and check that nothing leaked;
        * **pytest fixtures**, installed with trio_tcp: `tcp_server`, `memory_server` and
          `transport_server`.
        """
    ),
    SETUP,
    md(
        """
        ## Two handlers to test

        The protocol: the client sends lines; the server answers each line with the line in
        capitals, in angle brackets (`hi` → `<HI>`). One handler reads lines with
        `conn.lines()`. The other treats every chunk as one line: the bug from notebook 2,
        which works as long as nothing splits or joins the client's writes.
        """
    ),
    code(
        """
        from trio_tcp.testing import (
            CheckFailedError,
            cancellation_sweep,
            delay,
            eof_after,
            memory_connection_pair,
            rechunk,
            reset_after,
            serve_memory,
        )


        async def by_lines(conn: trio_tcp.Connection) -> None:
            async for line in conn.lines():
                await conn.send_all(b"<" + line.upper() + b">\\n")


        async def by_chunks(conn: trio_tcp.Connection) -> None:
            async for chunk in conn:
                await conn.send_all(b"<" + chunk.rstrip(b"\\n").upper() + b">\\n")


        async def conversation(client: trio_tcp.Connection) -> list[bytes]:
            replies = []
            for word in [b"hello", b"world"]:
                await client.send_all(word + b"\\n")
                replies.append(await client.receive_line())
            return replies
        """
    ),
    md(
        """
        ## Memory streams: no sockets at all

        `memory_connection_pair()` gives two joined `Connection` objects. Run the handler on
        one end, be the client on the other. This is the fastest test there is, and it is
        plain Trio: no ports, no operating system.
        """
    ),
    code(
        """
        async def pair_test() -> list[bytes]:
            client, server_side = memory_connection_pair()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(by_lines, server_side)
                replies = await conversation(client)
                await client.aclose()
            return replies


        print("memory pair:", await trio_bg.run(pair_test))
        """
    ),
    md(
        """
        `serve_memory` runs the **real** server (`trio_tcp.serve_listeners`, with its limits,
        error handling and shutdown) over an in-memory listener; `server.connect()` gives a
        client. Its `wrap=` option puts a fault on the server's side of every connection:
        `rechunk(1)` hands the handler one byte per read, `eof_after(n)` ends the stream
        after *n* bytes, `reset_after(n)` breaks it, `delay(s)` slows every call.

        Let us run both handlers under each fault and look at what the client gets.
        """
    ),
    code(
        """
        FAULTS = {
            "none": None,
            "rechunk(1)": rechunk(1),
            "rechunk(random)": rechunk(seed=5),
            "delay(10 ms)": delay(0.01),
            "eof_after(8)": eof_after(8),
            "reset_after(8)": reset_after(8),
        }
        EXPECTED = [b"<HELLO>", b"<WORLD>"]

        import logging

        # The server logs each stream that ends inside a line; expected here, so keep it quiet.
        logging.getLogger("trio_tcp").setLevel(logging.ERROR)


        async def under_fault(handler, wrap) -> str:
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    functools.partial(serve_memory, handler, wrap=wrap, grace_period=0)
                )
                try:
                    with trio.fail_after(2):
                        async with await server.connect() as client:
                            replies = await conversation(client)
                    outcome = "right" if replies == EXPECTED else f"WRONG {replies}"
                except Exception as exc:
                    outcome = f"break: {type(exc).__name__}"
                await server.aclose()
            return outcome


        async def fault_table() -> dict:
            return {
                (handler.__name__, fault): await under_fault(handler, wrap)
                for handler in (by_lines, by_chunks)
                for fault, wrap in FAULTS.items()
            }


        table = await trio_bg.run(fault_table)
        for (handler, fault), outcome in table.items():
            print(f"{handler:9} {fault:16} {outcome}")
        """
    ),
    md(
        """
        Read it as a picture: green is the right answer, grey a clean break (the stream ended
        or was reset, and the client was told), red a **wrong answer**: the worst outcome,
        because nothing notices it. `by_chunks` passes the plain test and the slow one, and
        fails as soon as the bytes come in different pieces, or the stream ends in the middle
        of a line: it answers half a line as if it were a whole one.
        """
    ),
    code(
        """
        from matplotlib.colors import ListedColormap

        handlers, faults = ["by_lines", "by_chunks"], list(FAULTS)
        labels = ["right", "break", "WRONG"]
        grid = [[labels.index(table[h, f].split(":")[0].split(" ")[0]) for f in faults]
                for h in handlers]

        fig, ax = plt.subplots(figsize=(9, 2.2))
        ax.imshow(grid, cmap=ListedColormap(["#4caf50", "#bdbdbd", "#e53935"]), vmin=0, vmax=2)
        for row, values in enumerate(grid):
            for col, value in enumerate(values):
                ax.text(col, row, labels[value], ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(faults)), faults, fontsize=8)
        ax.set_yticks(range(len(handlers)), handlers)
        ax.set_title("What the client got, per handler and fault", fontsize=10)
        plt.show()
        """
    ),
    md(
        """
        ## The cancellation sweep

        A handler can be cancelled at any `await`: by an idle timeout, by the end of a grace
        period, by a client going away. `cancellation_sweep(handler, client_script)` runs the
        conversation once to count the handler's stream calls, then once more per call,
        cancelling the handler exactly there. After each run it checks that the handler
        ended, the stream was closed, no task was left behind, the client saw either the
        right data or a clean break (never lost or duplicated bytes), and that the server
        still serves the next client.
        """
    ),
    code(
        """
        report = await trio_bg.run(cancellation_sweep, by_lines, conversation)
        print(report)
        print("stream calls of one run:", " ".join(report.operations))
        for point in report.runs[:3]:
            print(f"  point {point.index}: {point.operation:12} -> client: {point.client_outcome}")
        """
    ),
    md(
        """
        A handler that leaves something behind is caught. This one hands work to a background
        task (fire and forget) in a nursery that outlives the connection, a common way to
        leak work past shutdown:
        """
    ),
    code(
        """
        async def with_leak() -> None:
            async with trio.open_nursery() as outside:

                async def leaky(conn: trio_tcp.Connection) -> None:
                    outside.start_soon(trio.sleep_forever)  # "log it later"
                    await by_lines(conn)

                try:
                    await cancellation_sweep(leaky, conversation)
                except CheckFailedError as failure:
                    print("the sweep found:", failure)
                outside.cancel_scope.cancel()


        await trio_bg.run(with_leak)
        """
    ),
    md(
        """
        ## The pytest fixtures

        Installing trio_tcp registers a pytest plugin. With pytest-trio (`trio_mode = true`),
        a test asks for `transport_server` and runs **once per transport**: in memory, in
        lock-step memory (every send waits for its receive), over TCP on 127.0.0.1 and over a
        Unix socket. A handler that raises fails the test. Here is a test file, run by pytest
        in a subprocess:
        """
    ),
    code(
        """
        import pathlib
        import subprocess
        import sys
        import tempfile

        TEST_FILE = '''
        import trio_tcp
        from trio_tcp.testing import rechunk


        async def by_lines(conn: trio_tcp.Connection) -> None:
            async for line in conn.lines():
                await conn.send_all(b"<" + line.upper() + b">\\\\n")


        async def test_shouts_on_every_transport(transport_server):
            server = await transport_server(by_lines)
            async with await server.connect() as client:
                await client.send_all(b"hi\\\\n")
                assert await client.receive_line() == b"<HI>"


        async def test_shouts_one_byte_at_a_time(memory_server):
            server = await memory_server(by_lines, wrap=rechunk(1))
            async with await server.connect() as client:
                await client.send_all(b"one\\\\ntwo\\\\n")
                assert [await client.receive_line() for _ in "12"] == [b"<ONE>", b"<TWO>"]
        '''

        with tempfile.TemporaryDirectory() as folder:
            pathlib.Path(folder, "test_shout.py").write_text(TEST_FILE)
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "-o", "trio_mode=true", "-rA", "--no-header", "--color=no", "test_shout.py"],
                cwd=folder, capture_output=True, text=True, timeout=60,
            )
        print("\\n".join(line for line in result.stdout.splitlines() if line.strip()))
        """
    ),
    CLOSE,
]

# ---------------------------------------------------------------------------------------------
NB6: list[Cell] = [
    md(
        """
        # 6 · How fast is it?

        Measured here, on your machine, in a few seconds: an **echo server** (send bytes back
        as they come) written three ways, each the version a user would write:

        * **trio_tcp**: `trio_tcp.serve`, `async for chunk in conn` + `send_all`;
        * **plain Trio**: `trio.serve_tcp`, the same loop on a `SocketStream`;
        * **asyncio**: `asyncio.start_server`, `read(65536)` + `write` + `drain`.

        Two figures for each: **round trips per second** (send 64 bytes, wait for them to
        come back, repeat: this is latency-bound) and **throughput** (push 32 MiB through the
        echo as fast as it goes).

        Be careful with what these numbers mean. Here the client is Python too, in a thread
        of the same process, so client and server share one interpreter lock: the figures
        compare the servers *with each other* under identical conditions, they are not what
        a server can do. For that, `python bench/run.py` runs each server in its own process
        against a load generator written in C (`make bench`; `--quick` takes about 30 s).
        """
    ),
    SETUP,
    md(
        """
        ## The three servers

        The Trio ones run in the background Trio thread. The asyncio one runs on the
        notebook kernel's own asyncio loop, which is idle whenever a cell is waiting, so it
        serves while the measuring cells run.
        """
    ),
    code(
        """
        import asyncio


        async def trio_tcp_echo(conn: trio_tcp.Connection) -> None:
            async for chunk in conn:
                await conn.send_all(chunk)


        async def trio_echo(stream: trio.SocketStream) -> None:
            async for chunk in stream:
                await stream.send_all(chunk)


        async def asyncio_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()


        server = await trio_bg.start(functools.partial(trio_tcp.serve, trio_tcp_echo, 0))
        listeners = await trio_bg.start(
            functools.partial(trio.serve_tcp, trio_echo, 0, host="127.0.0.1")
        )
        aio_server = await asyncio.start_server(asyncio_echo, "127.0.0.1", 0)
        PORTS = {
            "trio_tcp": server.port,
            "plain Trio": listeners[0].socket.getsockname()[1],
            "asyncio": aio_server.sockets[0].getsockname()[1],
        }
        """
    ),
    md(
        """
        ## The client

        Plain blocking sockets in a worker thread (`asyncio.to_thread`), the same code for all
        three servers. `TCP_NODELAY` is on so that small messages go out at once.
        """
    ),
    code(
        """
        import socket
        import threading
        import time

        SECONDS = 0.5  # per server and figure
        MESSAGE = bytes(range(64))
        BULK = 32 * 1024 * 1024


        def connect(port: int) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock


        def round_trips(port: int) -> list[float]:
            # One 64-byte message at a time; returns each round trip's duration in seconds.
            latencies = []
            with connect(port) as sock:
                end = time.perf_counter() + SECONDS
                while (start := time.perf_counter()) < end:
                    sock.sendall(MESSAGE)
                    got = b""
                    while len(got) < len(MESSAGE):
                        got += sock.recv(65536)
                    assert got == MESSAGE
                    latencies.append(time.perf_counter() - start)
            return latencies


        def throughput(port: int) -> float:
            # Pushes BULK bytes through the echo (a second thread reads); returns bytes/s.
            with connect(port) as sock:
                received = 0

                def read_back() -> None:
                    nonlocal received
                    while received < BULK:
                        data = sock.recv(1 << 20)
                        if not data:
                            break
                        received += len(data)

                reader = threading.Thread(target=read_back)
                start = time.perf_counter()
                reader.start()
                block = bytes(1 << 16)
                for _ in range(BULK // len(block)):
                    sock.sendall(block)
                reader.join()
                assert received == BULK
                return BULK / (time.perf_counter() - start)
        """
    ),
    md("## Measure"),
    code(
        """
        results = {}
        for name, port in PORTS.items():
            latencies = await asyncio.to_thread(round_trips, port)
            rate = await asyncio.to_thread(throughput, port)
            results[name] = {"latencies": latencies, "rt/s": len(latencies) / SECONDS,
                             "MB/s": rate / 1e6}

        base = results["plain Trio"]
        header = ["round trips/s", "vs Trio", "throughput", "vs Trio"]
        print(f"{'server':11} {header[0]:>14} {header[1]:>8} {header[2]:>14} {header[3]:>8}")
        for name, r in results.items():
            print(f"{name:11} {r['rt/s']:14,.0f} {r['rt/s'] / base['rt/s']:8.2f} "
                  f"{r['MB/s']:10,.0f} MB/s {r['MB/s'] / base['MB/s']:8.2f}")
        """
    ),
    md(
        """
        ## As pictures

        Left: the two figures side by side (higher is better). Right: how long each round
        trip took, as a cumulative distribution: a curve further left is faster, and its
        right-hand tail shows the occasional slow round trip.
        """
    ),
    code(
        """
        names = list(results)
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
        for ax, key, title in [(axes[0], "rt/s", "round trips per second"),
                               (axes[1], "MB/s", "throughput, MB/s")]:
            values = [results[n][key] for n in names]
            bars = ax.bar(names, values, color=["C0", "C1", "C2"])
            ax.bar_label(bars, [f"{v:,.0f}" for v in values], fontsize=8)
            ax.set_title(title, fontsize=10)
        for i, name in enumerate(names):
            latencies = sorted(t * 1e6 for t in results[name]["latencies"])
            share = [(k + 1) / len(latencies) for k in range(len(latencies))]
            axes[2].plot(latencies, share, color=f"C{i}", label=name)
        axes[2].set_xscale("log")
        axes[2].set_xlabel("round trip, microseconds")
        axes[2].set_ylabel("share of round trips")
        axes[2].legend(fontsize=8)
        axes[2].set_title("round-trip latency", fontsize=10)
        fig.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        How to read them: the "vs Trio" columns are ratios to plain Trio measured in the same
        minute, which is the fair comparison here. Run the cell again and every figure moves,
        sometimes by tens of percent, and even the order can change: two cores shared by a
        Python client and a Python server are a noisy instrument. That noise is why
        `bench/run.py` runs longer, pins processes to cores and reports CPU time per request.
        """
    ),
    code(
        """
        aio_server.close()
        await aio_server.wait_closed()
        trio_bg.close()
        print("background run closed:", trio_bg.closed)
        """
    ),
]

NOTEBOOKS: dict[str, list[Cell]] = {
    "01-your-first-tcp-server.ipynb": NB1,
    "02-bytes-not-messages.ipynb": NB2,
    "03-many-clients.ipynb": NB3,
    "04-cancellation-timeouts-shutdown.ipynb": NB4,
    "05-testing-your-server.ipynb": NB5,
    "06-how-fast-is-it.ipynb": NB6,
}


def build(name: str, cells: list[Cell]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        if kind == "markdown":
            notebook.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            notebook.cells.append(nbformat.v4.new_code_cell(source))
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids: rebuilding gives small diffs
    return notebook


def main(argv: list[str]) -> int:
    wanted = set(argv) or set(NOTEBOOKS)
    for name, cells in NOTEBOOKS.items():
        if name in wanted:
            nbformat.write(build(name, cells), HERE / name)
            print(f"wrote notebooks/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
