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

        (12 is `0x0c`, 34 is `0x22`). This notebook tells that story three times: as a plain
        Trio script run the way you would run it from a terminal, then inside the notebook,
        then with `trio_tcp`, so you can see what the library adds.

        A few words first:

        * **127.0.0.1** is *loopback*: an address that never leaves your machine. Everything in
          these notebooks talks over it.
        * A **port** is a number that says which program on the machine a connection is for.
          The tutorial uses 3099; here we ask for port **0**, which means "any free port", so a
          notebook never fails because something else already uses 3099. (Notebook 7 looks
          at ports, and at the connection itself, in detail.)
        * A **connection** is a two-way byte stream between one client and the server. The
          server *accepts* connections; each one is a separate conversation.
        """
    ),
    md(
        """
        ## The plain-Trio program, as a script

        This is the whole server as you would save it in a file and run with
        `python server.py`. `trio.run(main)` starts Trio and runs `main` until it returns
        (this one never does: stop it with Ctrl-C). `trio.serve_tcp(handler, port)` listens
        and, for every connection it accepts, starts `handler(stream)` **as its own task**.
        That is the big difference from Node: Node hands you *events* (`'connection'`, then
        `'data'` callbacks); Trio hands you a *task* per connection that reads in a loop, top
        to bottom, like a little program. `async for chunk in stream` gives each chunk as it
        arrives and ends when the client closes its side; when the handler returns, Trio
        closes the connection.

        The cell writes the script to a temporary folder and starts it as a **separate
        process**, exactly as a terminal would.
        """
    ),
    code(
        """
        import pathlib
        import subprocess
        import sys
        import tempfile

        SERVER_SCRIPT = '''
        import sys

        import trio


        async def print_chunks(stream):
            async for chunk in stream:
                print("server got <Buffer " + chunk.hex(" ") + ">", flush=True)


        async def main():
            port = int(sys.argv[1]) if len(sys.argv) > 1 else 3099
            listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
            print("listening on 127.0.0.1:%d" % listeners[0].socket.getsockname()[1], flush=True)
            await trio.serve_listeners(print_chunks, listeners)


        trio.run(main)
        '''

        if "server_process" in globals():  # this cell run again: stop the previous server
            server_process.kill()
            server_process.communicate()
        folder = pathlib.Path(tempfile.mkdtemp())
        (folder / "server.py").write_text(SERVER_SCRIPT)
        server_process = subprocess.Popen(
            [sys.executable, str(folder / "server.py"), "0"],  # port 0: any free port
            stdout=subprocess.PIPE, text=True,
        )
        first_line = server_process.stdout.readline()
        script_port = int(first_line.rsplit(":", 1)[1])
        print("the server process says:", first_line.strip())
        """
    ),
    md(
        """
        The sender, as a **second process**: plain Python with the `socket` module, which is
        what the Node sender does. It connects, writes the two bytes, says "I will send
        nothing more" (`shutdown(SHUT_WR)`) and waits until the server closes its side.
        """
    ),
    code(
        """
        SENDER = '''
        import socket, sys

        with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as sock:
            sock.sendall(bytes([12, 34]))
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""
        print("sender: sent 12 and 34")
        '''

        sent = subprocess.run([sys.executable, "-c", SENDER, str(script_port)],
                              capture_output=True, text=True, timeout=30)
        print("the sender process printed:", sent.stdout.strip())
        """
    ),
    md(
        """
        **Where do the prints land?** Each process prints to its own standard output: in a
        terminal, the server's line would appear in the server's window, not the sender's.
        Here the notebook started both processes and captured their output through pipes,
        so it can show you both. Stop the server (as Ctrl-C would) and read what it printed:
        """
    ),
    code(
        """
        server_process.terminate()
        rest, _ = server_process.communicate(timeout=10)
        print("the server process printed:", rest.strip())
        """
    ),
    md(
        """
        ## Two ideas Trio is built on: nurseries and checkpoints

        **A nursery** is where tasks live. `async with trio.open_nursery() as nursery:`
        opens one; `nursery.start_soon(fn, ...)` starts a task in it; and the `async with`
        block does not end until every task in it has finished. So no task outlives the code
        that started it (Trio calls this *structured concurrency*). `serve_tcp` keeps its
        connection tasks in a nursery, and so does `trio_tcp.serve`.
        """
    ),
    SETUP,
    code(
        """
        async def worker(name: str, seconds: float) -> None:
            print(f"{name} starts")
            await trio.sleep(seconds)
            print(f"{name} done after {seconds} s")


        async def nursery_demo() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(worker, "a", 0.2)
                nursery.start_soon(worker, "b", 0.1)
                print("both started; the nursery block now waits for them")
            print("after the block: every task of the nursery has finished")


        await trio_bg.run(nursery_demo)
        """
    ),
    md(
        """
        (`trio_bg` is this notebook's Trio: `trio_tcp.notebook` keeps one Trio run in a
        background thread, so a server started in one cell keeps serving while later cells
        run. `await trio_bg.run(fn, ...)` runs `fn` there and brings its result and its
        prints back to the cell. Outside a notebook, you would write `trio.run(fn)`.
        IPython's own `%autoawait trio` runs every cell in a fresh `trio.run` that ends with
        the cell, so a server started there dies with its cell; `trio_bg` works under it too,
        but you do not need it.)

        **A checkpoint** is a point where a task lets others run. Trio switches tasks only at
        an `await` of one of Trio's own operations (a read, a send, a sleep,
        `trio.sleep(0)`...), never in the middle of ordinary code. Two tasks that pass
        checkpoints take turns; a task that computes without one keeps everyone else waiting
        until it is done. Checkpoints are also the only places where a task can be
        *cancelled* (notebook 4).
        """
    ),
    code(
        """
        async def checkpoint_demo() -> list[str]:
            order = []

            async def polite(name: str) -> None:
                for i in range(3):
                    order.append(f"{name}{i}")
                    await trio.sleep(0)  # a checkpoint: let the others run

            async def greedy(name: str) -> None:
                for i in range(3):
                    order.append(f"{name}{i}")  # no await: nobody else runs meanwhile

            async with trio.open_nursery() as nursery:
                nursery.start_soon(polite, "p")
                nursery.start_soon(polite, "q")
                nursery.start_soon(greedy, "G")
            return order


        print("order of steps:", " ".join(await trio_bg.run(checkpoint_demo)))
        """
    ),
    md(
        """
        The `G` steps always come in one block; the `p` and `q` steps interleave (in an order
        Trio is free to choose).

        **A cancel scope** is how anything is stopped in Trio. `with trio.move_on_after(s):`
        is a cancel scope with a deadline: when it passes, the code inside is cancelled at
        its next checkpoint and the program carries on after the block. Every nursery has
        one too, `nursery.cancel_scope`: cancelling it stops all the nursery's tasks.
        (Notebook 4 goes further: cancelling from another task, `finally`, shielding.)
        """
    ),
    code(
        """
        async def cancel_scope_demo() -> None:
            with trio.move_on_after(0.1) as scope:  # a cancel scope with a deadline
                await trio.sleep(10)
                print("never printed")
            print(f"gave up after 0.1 s: cancelled_caught={scope.cancelled_caught}")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep, 10)
                nursery.cancel_scope.cancel()  # stop every task of the nursery
            print("nursery cancelled: its sleeping task stopped at its checkpoint")


        await trio_bg.run(cancel_scope_demo)
        """
    ),
    md(
        """

        ## The same server inside the notebook

        The handler from the script, imported from `trio_tcp.lessons` (the module that holds
        every handler these notebooks teach, each one tested under concurrency and
        cancellation), now served by this notebook's Trio. `name="plain"` makes re-running
        the cell replace the server instead of starting a second one.
        """
    ),
    code(
        """
        from trio_tcp import lessons

        listeners = await trio_bg.start(
            functools.partial(trio.serve_tcp, lessons.print_chunks, 0, host="127.0.0.1"),
            name="plain",
        )
        plain_port = listeners[0].socket.getsockname()[1]
        print(f"plain Trio server listening on 127.0.0.1:{plain_port}")
        """
    ),
    md(
        """
        The same sender process talks to it. This time the server runs inside the notebook's
        own process, so its print lands **here**, in the cell that is running when it
        happens.
        """
    ),
    code(
        """
        sent = subprocess.run([sys.executable, "-c", SENDER, str(plain_port)],
                              capture_output=True, text=True, timeout=30)
        print("the sender process printed:", sent.stdout.strip())
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

        This handler is `lessons.print_buffers` with a log of when things happen, to draw
        afterwards. The client is a Trio task; `send_eof` is Trio's `shutdown(SHUT_WR)`.
        """
    ),
    code(
        """
        events = []  # (who, what, trio time)


        async def handler(conn: trio_tcp.Connection) -> None:
            events.append(("server", "accepted", trio.current_time()))
            async for chunk in conn:
                events.append(("server", "chunk", trio.current_time()))
                print("server got", trio_tcp.format_buffer(chunk))
            events.append(("server", "end of stream", trio.current_time()))


        server = await trio_bg.start(functools.partial(trio_tcp.serve, handler, 0), name="tcp")
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


        events.clear()
        await trio_bg.run(sender, server.port)
        stats = server.stats
        print(f"connections accepted: {stats.accepted}, bytes received: {stats.bytes_received}")
        """
    ),
    md(
        """
        ## What happened, in order

        Each dot is one event; the two rows are the two ends of the connection. Time runs left
        to right, in milliseconds since the client started connecting. The server's task
        starts only once the connection is accepted, and ends when the client's end of
        stream arrives.
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
        The command line does the sender's job too: `trio-tcp send` (a real second process
        again; its default port is the tutorial's 3099, here it is told the notebook's).
        `trio-tcp serve` is the server side, and `trio-tcp demo` runs both in one process.
        """
    ),
    code(
        """
        sent = subprocess.run(
            [sys.executable, "-m", "trio_tcp", "send", "--port", str(server.port), "--hex", "0c22"],
            capture_output=True, text=True, timeout=30,
        )
        print("trio-tcp send exited with", sent.returncode)
        """
    ),
    md(
        """
        ## Exercise

        Write an **echo** handler: it sends every byte it receives back to the client, in
        order, until the client ends its side. Below is a first try; run it and the check
        under it, read what the check says, fix the handler and run both cells again. The
        check runs your handler on the real server machinery in memory, with messages one at
        a time, a large one, one byte at a time, ten clients at once and a client that
        vanishes. (One solution: `trio_tcp.lessons.solutions.solution_echo`.)
        """
    ),
    code(
        """
        async def my_echo(conn: trio_tcp.Connection) -> None:
            data = await conn.receive_some()
            await conn.send_all(data)
        """
    ),
    code(
        """
        print(await trio_bg.run(lessons.check_echo_exercise, my_echo))
        """
    ),
    md("Last cell: shut the background run down, which cancels the servers and closes every socket."),
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
            functools.partial(trio_tcp.serve, functools.partial(recorder, reader_delay=0.2), 0),
            name="nb2",
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

        Now one `send_all` of 1 MiB to a server that reads at once. A read returns whatever
        has arrived so far, at most 64 KiB (the receive size), or up to 124 KiB while reads
        keep coming back full, as in a big transfer; the one write arrives as many chunks.
        """
    ),
    code(
        """
        await trio_bg.run(server.aclose)  # the next server reads at once
        server = await trio_bg.start(functools.partial(trio_tcp.serve, recorder, 0), name="nb2")
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
        fig, axes = plt.subplots(2, 1, figsize=(9, 3.6))
        for ax, title, writes, reads, unit, scale in [
            (axes[0], "ten 5-byte writes", small_writes, small_reads, "bytes", 1),
            (axes[1], "one 1 MiB write", big_writes, big_reads, "KiB", 1024),
        ]:
            for row, sizes in [(1, [s for _, s in writes]), (0, [s for _, s in reads])]:
                left = 0
                for i, size in enumerate(sizes):
                    ax.barh(row, size / scale, left=left / scale, color=f"C{i % 2 + 2 * row}",
                            edgecolor="white")
                    left += size
            ax.set_yticks([0, 1], ["reads", "writes"])
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(unit)
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
        the handler still sees whole messages. (The handler is `trio_tcp.lessons`'s, like
        every handler these notebooks teach; the length is big-endian, "network byte order":
        notebook 7 says why that matters.)
        """
    ),
    code(
        """
        from trio_tcp import lessons

        tnb.show_source(lessons.greeting_then_lines)
        """
    ),
    code(
        """
        from trio_tcp import lessons

        await trio_bg.run(server.aclose)
        server = await trio_bg.start(
            functools.partial(trio_tcp.serve, lessons.greeting_then_lines, 0), name="nb2"
        )


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
    md(
        """
        ## Exercise

        Write a handler that answers every line with its **length in bytes**, as a line
        (`hello` → `5`, an empty line → `0`). The first try below answers per chunk. The
        check sends four lines in one write, then one byte per read, then in random pieces,
        and says what came back. (One solution:
        `trio_tcp.lessons.solutions.solution_line_length`.)
        """
    ),
    code(
        """
        async def line_lengths(conn: trio_tcp.Connection) -> None:
            async for chunk in conn:
                await conn.send_all(b"%d\\n" % len(chunk.rstrip(b"\\n")))
        """
    ),
    code(
        """
        print(await trio_bg.run(lessons.check_line_length_exercise, line_lengths))
        """
    ),
    CLOSE,
]

# ---------------------------------------------------------------------------------------------
NB3: list[Cell] = [
    md(
        """
        # 3 · Many clients at once

        `trio_tcp.serve` runs **one task per connection**, all in one nursery (notebook 1). A
        task waiting for its client costs almost nothing, so a thousand idle clients are a
        thousand sleeping tasks, not a thousand threads. When one client is slow, only its
        task waits.

        This notebook builds the classic next step of the tutorial: a **chat room**. Every
        line a client sends goes to every client. The obvious version works in a quick test
        and breaks as soon as one member stops reading; the fix is a pattern worth knowing:
        a queue and a writer task per member.
        """
    ),
    SETUP,
    md(
        """
        ## The obvious chat room

        The room is a set of connections. A member's handler reads lines and, for each one,
        sends it to every member in turn. The handlers shown in this notebook live in
        `trio_tcp.lessons` (tested there under concurrency and cancellation); this is the
        source of the one we import:
        """
    ),
    code(
        """
        from trio_tcp import lessons

        tnb.show_source(lessons.NaiveChatRoom)
        """
    ),
    md(
        """
        ## A member who never reads

        `send_all` returns once the operating system has taken the bytes. When a client does
        not read, the kernel's buffers for its connection fill up (notebook 7 shows them),
        and then `send_all` to it **waits**: this is *back-pressure*, and normally it is a
        feature, it keeps a fast sender from piling up memory.

        But here *other* members' tasks do the sending. Let three clients in: `zed` joins
        and never reads; `ada` and `bob` each say 200 lines of about 500 bytes, each waiting
        to see its own line come back before saying the next (a person's pace). The
        server's send buffers are made small, as on a busy machine, so this shows within a
        second.
        """
    ),
    code(
        """
        import socket

        LINES = 200


        async def busy_room(handler):
            back: dict[str, list[float]] = {"ada": [], "bob": []}  # when each own line came back
            ended: dict[str, tuple[float, str]] = {}  # when and how each speaker stopped
            crashes: list[Exception] = []

            async def host(conn: trio_tcp.Connection) -> None:
                conn.stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                try:
                    await handler(conn)
                except* trio.BrokenResourceError:
                    pass  # a client reset its connection (zed, leaving with unread lines)
                except* Exception as group:  # kept to show below (the server would log it)
                    crashes.extend(group.exceptions)

            async def speaker(name: str, port: int, t0: float) -> None:
                how = "still waiting"
                async with await trio_tcp.open_connection("127.0.0.1", port) as conn:
                    await conn.send_all(name.encode() + b"\\n")
                    try:
                        for i in range(LINES):
                            mine = f"{name}: line {i} {'x' * 500}".encode()
                            await conn.send_all(mine[len(name) + 2:] + b"\\n")
                            while await conn.receive_line() != mine:
                                pass  # somebody else's line
                            back[name].append(trio.current_time() - t0)
                        how = "done"
                    except (trio.BrokenResourceError, trio_tcp.EndOfStream):
                        how = "disconnected"  # the server closed this connection
                    finally:
                        ended[name] = (trio.current_time() - t0, how)

            async with trio.open_nursery() as nursery:
                server = await nursery.start(functools.partial(trio_tcp.serve, host, 0))
                zed = await trio_tcp.open_connection("127.0.0.1", server.port)
                zed.stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                await zed.send_all(b"zed\\n")  # joins, then never reads
                t0 = trio.current_time()
                with trio.move_on_after(1.5):
                    async with trio.open_nursery() as talk:
                        for name in back:
                            talk.start_soon(speaker, name, server.port, t0)
                await zed.aclose()
                await server.aclose()  # every client has left: the handlers end by themselves
            return back, ended, crashes


        naive, naive_ended, crashes = await trio_bg.run(busy_room, lessons.NaiveChatRoom().handler)
        for name, times in naive.items():
            print(f"{name} saw {len(times)} of its {LINES} lines come back, then: "
                  f"{naive_ended[name][1]}")
        if crashes:
            print(f"the first handler crash: {type(crashes[0]).__name__}: {crashes[0]}")
        """
    ),
    md(
        """
        Two things went wrong. First, **everybody waits for the slowest member**: once
        `zed`'s buffers are full, a speaker's `send_all` to `zed` never returns, so that
        speaker's handler stops reading its own client, and the conversation stalls.

        Second, **a crash**. `ada`'s task is inside `send_all` on `zed`'s connection, waiting;
        then `bob`'s task calls `send_all` on the same connection. Two tasks writing to one
        stream at once would interleave their bytes, so Trio refuses:
        `trio.BusyResourceError`. The server closes `bob`'s connection, and `bob` is gone.

        ## One queue and one writer task per member

        The fix gives every member a **memory channel**: a bounded queue between tasks,
        `trio.open_memory_channel(size)`, with a send end and a receive end. Each member gets
        its own **writer task**, the only task that ever sends on that member's connection:
        it takes lines from the queue and sends them. Broadcasting only drops the line into
        every queue with `send_nowait`, which never waits; when a member's queue is full, that
        member is too slow and misses the line (a stricter server disconnects it, as IRC
        servers do with "SendQ exceeded").

        Two details. The writer runs in a nursery inside the handler, so when the member
        leaves (or the handler is cancelled) its writer ends with it. And the member's
        goodbye to the room in `finally` is a plain function call, with no `await`, so it
        runs even when the handler is being cancelled.
        """
    ),
    code(
        """
        tnb.show_source(lessons.ChatRoom)
        """
    ),
    code(
        """
        room = lessons.ChatRoom(queue_size=64)
        queued, queued_ended, crashes = await trio_bg.run(busy_room, room.handler)
        for name, times in queued.items():
            print(f"{name} saw {len(times)} of its {LINES} lines come back, "
                  f"the last after {times[-1]:.2f} s")
        print(f"crashes: {len(crashes)}; lines zed missed because its queue was full: {room.dropped}")
        """
    ),
    md(
        """
        ## The two rooms side by side

        Each line is one speaker's conversation: how many of its own lines had come back,
        over time (a log scale, so milliseconds and seconds both show). In the obvious room
        the speakers stall within milliseconds: one is disconnected by the crash, the other
        waits, flat, until the demonstration gives up. With a queue per member both run to
        the end in a few milliseconds, and the member who never reads costs them nothing.
        """
    ),
    code(
        """
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True, sharex=True)
        runs = [("obvious room (send in turn)", naive, naive_ended),
                ("a queue and a writer per member", queued, queued_ended)]
        for ax, (title, run, ended) in zip(axes, runs):
            for name, color, style in [("ada", "C0", dict(lw=5, alpha=0.45)),
                                       ("bob", "C3", dict(lw=1.5, ls="--"))]:
                # Each own line seen back is one step up; flat runs are waits.
                end, how = ended[name]
                times = [0.001, *run[name], end]
                counts = [0, *range(1, len(run[name]) + 1), len(run[name])]
                ax.step(times, counts, where="post", color=color, label=f"{name}: {how}", **style)
            ax.set_xscale("log")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("seconds (log scale)")
            ax.axhline(LINES, color="grey", lw=0.6, ls=":")
            ax.legend(fontsize=8, loc="center left")
        axes[0].set_ylabel("own lines seen back")
        fig.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        ## Three members talking

        With the room that works, three clients join one after the other, then each says
        one line. Every member listens in its own task (a nursery of our own), so all three
        hear each line at the same time.
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


        server = await trio_bg.start(
            functools.partial(trio_tcp.serve, lessons.ChatRoom().handler, 0), name="chat"
        )
        heard = await trio_bg.run(conversation, server.port)
        for name, lines in heard.items():
            print(f"--- {name} heard:")
            for line in lines:
                print("   ", line)
        """
    ),
    md(
        """
        ## Exercise

        Write a chat room in which a member who never reads stops nobody. `make_room()`
        returns the handler of a fresh room: a client's first line is its name, and every
        later line must reach every member as `name: line`. The first try below is the
        obvious room again; the check runs it over *unbuffered* in-memory streams, where a
        member who does not read blocks any send to it at once, and says what goes wrong.
        (One solution: `trio_tcp.lessons.solutions.solution_chat`, i.e. `ChatRoom`.)
        """
    ),
    code(
        """
        def make_room():
            members: set[trio_tcp.Connection] = set()

            async def handler(conn: trio_tcp.Connection) -> None:
                name = await conn.receive_line()
                members.add(conn)
                try:
                    async for line in conn.lines():
                        for member in list(members):
                            await member.send_all(name + b": " + line + b"\\n")
                finally:
                    members.discard(conn)

            return handler
        """
    ),
    code(
        """
        print(await trio_bg.run(lessons.check_chat_exercise, make_room))
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

        This notebook first shows the two tools, cancel scopes and shielding, each with a
        small example; then four ways a connection ends early: a timeout in the client, an
        idle timeout in the server, a handler that crashes, and a graceful shutdown of the
        server.
        """
    ),
    SETUP,
    md(
        """
        ## Cancel scopes

        Notebook 1 showed `move_on_after`, a cancel scope with a deadline. The scope itself:
        `with trio.CancelScope() as scope:` marks a block of code; `scope.cancel()`, from
        anywhere (here, another task), cancels everything running inside it. The tasks inside get `trio.Cancelled`
        at their next checkpoint (notebook 1: an `await` of a Trio operation), run their
        `finally` blocks, and the exception stops at the scope's edge: after the `with`, the
        code carries on, and `scope.cancelled_caught` says what happened.
        """
    ),
    code(
        """
        async def cancel_later(scope: trio.CancelScope, seconds: float) -> None:
            await trio.sleep(seconds)
            scope.cancel()


        async def cancel_scope_demo() -> None:
            async with trio.open_nursery() as nursery:
                with trio.CancelScope() as scope:
                    nursery.start_soon(cancel_later, scope, 0.1)
                    try:
                        print("waiting for 10 s...")
                        await trio.sleep(10)
                    except trio.Cancelled:
                        print("...Cancelled, raised at the await")
                        raise  # always let Cancelled go on: the scope catches it
                    finally:
                        print("finally blocks run, as for any exception")
                print(f"after the scope: cancelled_caught={scope.cancelled_caught}")


        await trio_bg.run(cancel_scope_demo)
        """
    ),
    md(
        """
        ## Shielding

        Sometimes cleanup has to wait for something: say goodbye to the peer, flush a log.
        Inside a cancelled scope that `await` would be cancelled at once. A scope with
        `shield=True` keeps the cancellation out of the code it wraps. Use it sparingly and
        always with a timeout of its own: a shielded wait that never ends cannot be stopped.
        """
    ),
    code(
        """
        async def cleanup(shielded: bool) -> None:
            with trio.move_on_after(0.05):  # the "caller" gives up after 50 ms
                try:
                    await trio.sleep(10)
                finally:
                    try:
                        with trio.CancelScope(shield=shielded), trio.move_on_after(1):
                            await trio.sleep(0.1)  # the cleanup that needs to wait
                            print(f"shield={shielded}: the cleanup finished")
                    except trio.Cancelled:
                        print(f"shield={shielded}: the cleanup was cancelled at its first await")
                        raise


        await trio_bg.run(cleanup, False)
        await trio_bg.run(cleanup, True)
        """
    ),
    md(
        """
        ## The server's log

        The server reports what it does on the `trio_tcp` logger. Send those records to this
        notebook's output, one short line each (the full traceback is there in a real log).
        Re-running the cell replaces the handler instead of adding a second one (which would
        print every line twice).
        """
    ),
    code(
        """
        import logging
        import sys


        class OneLine(logging.Formatter):
            def formatException(self, exc_info) -> str:
                return f"    {exc_info[0].__name__}: {exc_info[1]}"


        logger = logging.getLogger("trio_tcp")
        for old in [h for h in logger.handlers if h.get_name() == "notebook"]:
            logger.removeHandler(old)
        log_output = logging.StreamHandler(sys.stdout)
        log_output.set_name("notebook")
        log_output.setFormatter(OneLine("log: %(message)s"))
        logger.addHandler(log_output)
        logger.setLevel(logging.INFO)
        """
    ),
    md(
        """
        ## Timeouts

        A timeout is a cancel scope with a deadline. A server that says nothing, and a client
        that will not wait more than 0.25 s for it. `trio.move_on_after` cancels what is
        inside and carries on after the block;
        `trio.fail_after` raises `trio.TooSlowError` instead. Either way the wait is over and
        nothing is left running.
        """
    ),
    code(
        """
        async def silent(conn: trio_tcp.Connection) -> None:
            await conn.receive_some()  # waits for the client; never sends


        quiet = await trio_bg.start(functools.partial(trio_tcp.serve, silent, 0), name="quiet")


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
        from trio_tcp import lessons


        patient = await trio_bg.start(
            functools.partial(trio_tcp.serve, lessons.echo, 0, idle_timeout=0.4), name="patient"
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
        tnb.show_source(lessons.calculator)
        """
    ),
    code(
        """
        calc = await trio_bg.start(functools.partial(trio_tcp.serve, lessons.calculator, 0),
                                   name="calc")


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

        Three handlers show three behaviours. A **polite** one (`lessons.polite_echo`, below)
        echoes lines with `until_closing=True`, so it stops at the shutdown (its peer is quiet
        between lines), says goodbye and returns; when its client leaves first, it returns at
        once. A **busy** one is doing a 0.5 s job when the shutdown starts and finishes it
        within the grace period. A **stubborn** one never looks and is cancelled when the
        grace period ends.
        """
    ),
    code(
        """
        tnb.show_source(lessons.polite_echo)
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
                    await lessons.polite_echo(conn)
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


        lifetimes.clear()
        graceful = await trio_bg.start(  # a fresh server each time this cell runs
            functools.partial(trio_tcp.serve, shutdown_handler, 0, grace_period=GRACE),
            name="graceful",
        )
        story = await trio_bg.run(shutdown_story, graceful)
        """
    ),
    md(
        """
        ## Connection lifetimes across the shutdown

        One bar per connection, from its first line to the end of its handler. The polite one
        ends as soon as the shutdown begins, the busy one when its job is done, the stubborn
        one exactly at the end of the grace period.
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
    md(
        """
        ## Exercise

        Write a **polite** handler of your own: it echoes lines, and when the server starts
        closing it sends `goodbye` and returns by itself; when its client ends its side it
        returns at once. The first try below never looks at the shutdown. The check runs it
        through an echo, a client that leaves, a graceful shutdown and the cancellation
        sweep (notebook 5), and says what went wrong. (One solution:
        `trio_tcp.lessons.solutions.solution_polite`.)
        """
    ),
    code(
        """
        async def my_polite(conn: trio_tcp.Connection) -> None:
            async for line in conn.lines():
                await conn.send_all(line + b"\\n")
            await conn.send_all(b"goodbye\\n")
        """
    ),
    code(
        """
        print(await trio_bg.run(lessons.check_polite_exercise, my_polite))
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
        which works as long as nothing splits or joins the client's writes. Both are in
        `trio_tcp.lessons` (the second kept only to show the bug):
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


        from trio_tcp import lessons

        by_lines, by_chunks = lessons.shout_lines, lessons.shout_chunks


        async def conversation(client: trio_tcp.Connection) -> list[bytes]:
            replies = []
            for word in [b"hello", b"world"]:
                await client.send_all(word + b"\\n")
                replies.append(await client.receive_line())
            return replies
        """
    ),
    code(
        """
        tnb.show_source(lessons.shout_lines)
        """
    ),
    code(
        """
        tnb.show_source(lessons.shout_chunks)
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
        `rechunk(1)` hands the handler one byte per read (so `hello\\n` arrives as six reads:
        `h`, `e`, `l`, `l`, `o`, `\\n`), `eof_after(n)` ends the stream after *n* bytes,
        `reset_after(n)` breaks it, `delay(s)` slows every call.

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
                (name, fault): await under_fault(handler, wrap)
                for name, handler in {"by_lines": by_lines, "by_chunks": by_chunks}.items()
                for fault, wrap in FAULTS.items()
            }


        table = await trio_bg.run(fault_table)
        for (handler, fault), outcome in table.items():
            print(f"{handler:9} {fault:16} {outcome}")
        """
    ),
    md(
        """
        Read it as a picture: green is the right answer, grey a clean break, red a **wrong
        answer**: the worst outcome, because nothing notices it.

        What the client sees in a break deserves care. Under `eof_after(8)` the server's
        handler reads end of stream in the middle of `world`, returns, and the server
        closes the connection: the client reads `EndOfStream`. Under `reset_after(8)` the
        fault is on the *server's* side: the handler's next read raises
        `trio.BrokenResourceError` and the server closes the connection, and the client,
        over an in-memory stream, again just reads `EndOfStream`, exactly as for a clean
        end. It was not told anything was wrong. On a real TCP socket a reset (an RST) does
        reach the other side, as `trio.BrokenResourceError` on its next read or write
        (notebook 7 shows one). `by_chunks` passes the plain test and the slow one, and
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

        fig, ax = plt.subplots(figsize=(10, 2.6))
        ax.imshow(grid, cmap=ListedColormap(["#4caf50", "#bdbdbd", "#e53935"]), vmin=0, vmax=2)
        for row, values in enumerate(grid):
            for col, value in enumerate(values):
                text = labels[value]
                if text == "break":  # name what the client's read raised
                    text = "break:\\n" + table[handlers[row], faults[col]].split(": ")[1]
                ax.text(col, row, text, ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(faults)), [f.replace("(", "\\n(") for f in faults], fontsize=8)
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
        conversation once to count every place the handler's tasks wait (a stream call, a
        lock, an event, a channel, a sleep, a nursery), then once more per place, cancelling
        the handler exactly there. After each run it checks that the handler did not swallow
        the cancellation, ended, released its locks, closed the stream, left no task behind,
        and that the client saw either the
        right data or a clean break (never lost or duplicated bytes), and that the server
        still serves the next client.
        """
    ),
    code(
        """
        report = await trio_bg.run(cancellation_sweep, lessons.shout_lines, conversation)
        print(report)
        for point in report.runs[:3]:
            print(f"  point {point.index}: {point.task} waiting in {point.operation} "
                  f"-> client: {point.client_outcome}")
        """
    ),
    md(
        """
        The bytes are handed to the handler **one at a time** (the sweep's default
        `chunk_size=1`, the same re-chunking as `rechunk(1)`, so `hello\\n` is six reads):
        that makes the points depend on the bytes alone, never on how the writes happened to
        coalesce, so every run cancels at the same place.

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
                    await lessons.shout_lines(conn)

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
        from trio_tcp.lessons import shout_lines as by_lines
        from trio_tcp.testing import rechunk


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
    md(
        """
        ## Exercise

        Make a shouting handler (`hi` → `<HI>`, one answer per line) that gives the right
        answer however the bytes arrive and survives the cancellation sweep. The first try
        below is `by_chunks` again; the check runs the conversation as sent, one byte per
        read, in random pieces, and then the sweep. (One solution:
        `trio_tcp.lessons.solutions.solution_shout`.)
        """
    ),
    code(
        """
        async def my_shout(conn: trio_tcp.Connection) -> None:
            async for chunk in conn:
                await conn.send_all(b"<" + chunk.rstrip(b"\\n").upper() + b">\\n")
        """
    ),
    code(
        """
        print(await trio_bg.run(lessons.check_shout_exercise, my_shout))
        """
    ),
    CLOSE,
]

# ---------------------------------------------------------------------------------------------
NB6: list[Cell] = [
    md(
        """
        # 6 · How fast is it?

        The figures in this notebook come from **`bench/published.json`**, the committed
        result of the project's benchmark, not from this notebook: `python bench/published.py
        --out bench/published.json` runs every server in its own process against a load
        generator written in C, several times, alternating the order of the servers from run
        to run, and records for each server and workload the **median and the range** over
        the runs, the ratio to plain Trio measured in the same run, and the CPU time the
        server spent per operation. The file says when, where and with which command it was
        made; the first cell prints that.

        The servers are echo servers written the way a user would write them: `trio_tcp`
        (`trio_tcp.serve`, `async for chunk in conn` + `send_all`), the `trio-tcp serve`
        command, plain Trio (`trio.serve_tcp`), asyncio streams (and with uvloop), and Node's
        `net` module, when installed. At the end, a short run inside the notebook is a
        **demonstration** of how such figures are taken, not a measurement.
        """
    ),
    SETUP,
    code(
        """
        import json
        import pathlib

        PUBLISHED = pathlib.Path("../bench/published.json")
        if PUBLISHED.exists():
            published = json.loads(PUBLISHED.read_text())
            print(f"figures from {PUBLISHED.name}, generated {published['generated']}")
            print(f"command: {published['command']}")
            print(f"{published['runs']} alternated runs on {published['machine']}")
        else:
            published = None
            print("bench/published.json is not there: run `python bench/published.py "
                  "--out bench/published.json` to make it; only the demonstration below runs.")
        """
    ),
    md(
        """
        ## The table

        For each workload: the server's median over the runs and its range (lowest to
        highest), then its ratio to plain Trio in the same run (median and range; above 1 is
        better than plain Trio: faster, or for idle memory, less memory per connection), and
        the CPU time the server used per operation.
        """
    ),
    code(
        """
        if published:
            for workload in dict.fromkeys(row["workload"] for row in published["rows"]):
                print(f"--- {workload}")
                for row in published["rows"]:
                    if row["workload"] != workload:
                        continue
                    ratio = ("" if row["ratio_trio_median"] is None else
                             f"{row['ratio_trio_median']:5.2f}x trio "
                             f"({row['ratio_trio_min']:.2f}-{row['ratio_trio_max']:.2f})")
                    cpu = ("" if row["cpu_us_per_op_median"] is None else
                           f"{row['cpu_us_per_op_median']:6.1f} µs CPU/op")
                    print(f"  {row['server']:16} {row['median']:>11,.1f} {row['unit']:8} "
                          f"({row['min']:,.1f}-{row['max']:,.1f})  {ratio}  {cpu}")
        """
    ),
    md(
        """
        ## As a picture

        One panel per workload: each server's ratio to plain Trio (the dot is the median, the
        bar the range over the runs; to the right is better). The grey line is plain Trio
        itself. A range that crosses the line means the difference is within the noise of
        the machine the figures were taken on.
        """
    ),
    code(
        """
        if published:
            workloads = list(dict.fromkeys(row["workload"] for row in published["rows"]))
            servers = list(dict.fromkeys(row["server"] for row in published["rows"]))
            columns = 3
            rows_of_panels = -(-len(workloads) // columns)
            fig, axes = plt.subplots(rows_of_panels, columns, figsize=(11, 2.3 * rows_of_panels),
                                     sharey=True, squeeze=False)
            for ax, workload in zip(axes.flat, workloads):
                mine = {r["server"]: r for r in published["rows"] if r["workload"] == workload}
                for y, name in enumerate(servers):
                    row = mine.get(name)
                    if not row or row["ratio_trio_median"] is None:
                        continue
                    median = row["ratio_trio_median"]
                    ax.errorbar(median, y, fmt="o", color=f"C{y}",
                                xerr=[[median - row["ratio_trio_min"]],
                                      [row["ratio_trio_max"] - median]], capsize=3)
                ax.axvline(1.0, color="grey", lw=1)
                ax.set_title(workload, fontsize=9)
                ax.set_yticks(range(len(servers)), servers, fontsize=8)
                ax.tick_params(axis="x", labelsize=8)
            axes[0][0].invert_yaxis()  # the first server on top (the y axis is shared)
            for ax in list(axes.flat)[len(workloads):]:
                ax.axis("off")
            fig.supxlabel("ratio to plain Trio in the same run (above 1: better)", fontsize=9)
            fig.tight_layout()
            plt.show()
        """
    ),
    md(
        """
        ## Where the speed comes from

        Every server here makes the same system calls into the same kernel (one `recv` and
        one `send` per round trip at 50 connections, counted with `perf stat`); the
        differences are the Python work around them, mostly passes through the scheduler.
        trio_tcp's socket fast path is one class, `FastSocketStream` in
        `trio_tcp/_socket_stream.py`, and it keeps Trio's rule: **every call is a
        checkpoint** (it may be cancelled there, and it lets the other tasks run), so a
        cancelled call has done nothing; Trio's own `check_half_closeable_stream` checks it.
        Within that rule:

        - it **calls `recv` and `send` on the socket directly** and waits only when the
          kernel has nothing;
        - its checkpoints are **Trio's, rebuilt in one generator frame** instead of three
          (about 1.2 µs less per call);
        - a receive yields first, so the yield is also the peer's time to answer; a **send
          goes out first and yields after**, so a reply is on the wire before the other
          tasks run (on one connection that alone took round trips from 1.1× to 1.6× plain
          Trio's);
        - a read that finds nothing **lets the others run three more rounds** before it
          waits on epoll, since waiting and waking cost several rounds;
        - `async for chunk in conn` and `conn.send_all()` **go straight to the socket
          stream** (no buffer or bookkeeping of their own), and a read that keeps filling
          64 KiB asks for 124 KiB;
        - the server **accepts in batches**, closes a finished connection without a
          checkpoint, and **lingers only when unread bytes** would turn the close into a
          reset.

        Read the table honestly: the rows where trio_tcp does not reach what it aims for
        are there too, and the single-connection rows move a lot from one series to the
        next on a shared machine.

        Your handler matters as much: a handler that answers a burst of 200 lines with 200
        `send_all` calls makes 200 system calls where one would do. That is the exercise
        below.

        ## A demonstration (not a measurement)

        To show how such figures are taken, three echo servers run in this notebook, and a
        Python client in a worker thread of the same process times round trips (send 64
        bytes, wait for them to come back, repeat) and pushes 8 MiB through. Client and
        servers share one process and one interpreter lock, and the order is fixed, so
        these numbers are **not** a benchmark: run the cell twice and they move by tens of
        percent, sometimes changing places. The table above is what to quote.
        """
    ),
    code(
        """
        import asyncio
        import socket
        import threading
        import time

        from trio_tcp import lessons

        SECONDS = 0.3  # per server and figure
        MESSAGE = bytes(range(64))
        BULK = 8 * 1024 * 1024


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


        server = await trio_bg.start(functools.partial(trio_tcp.serve, lessons.echo, 0),
                                     name="trio_tcp")
        listeners = await trio_bg.start(
            functools.partial(trio.serve_tcp, trio_echo, 0, host="127.0.0.1"), name="trio"
        )
        if "aio_server" in globals():  # this cell run again: close the previous one
            aio_server.close()
        aio_server = await asyncio.start_server(asyncio_echo, "127.0.0.1", 0)
        PORTS = {
            "trio_tcp": server.port,
            "plain Trio": listeners[0].socket.getsockname()[1],
            "asyncio": aio_server.sockets[0].getsockname()[1],
        }


        def connect(port: int) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock


        def round_trips(port: int) -> list[float]:
            latencies = []
            with connect(port) as sock:
                end = time.perf_counter() + SECONDS
                while (start := time.perf_counter()) < end:
                    sock.sendall(MESSAGE)
                    got = b""
                    while len(got) < len(MESSAGE):
                        got += sock.recv(65536)
                    latencies.append(time.perf_counter() - start)
            return latencies


        def throughput(port: int) -> float:
            with connect(port) as sock:
                received = 0

                def read_back() -> None:
                    nonlocal received
                    while received < BULK and (data := sock.recv(1 << 20)):
                        received += len(data)

                reader = threading.Thread(target=read_back)
                start = time.perf_counter()
                reader.start()
                block = bytes(1 << 16)
                for _ in range(BULK // len(block)):
                    sock.sendall(block)
                reader.join()
                return received / (time.perf_counter() - start)


        results = {}
        for name, port in PORTS.items():
            latencies = await asyncio.to_thread(round_trips, port)
            rate = await asyncio.to_thread(throughput, port)
            results[name] = {"latencies": latencies, "rt/s": len(latencies) / SECONDS,
                             "MB/s": rate / 1e6}
        base = results["plain Trio"]
        print("demonstration only (one process, one run, fixed order):")
        print(f"{'server':11} {'round trips/s':>14} {'vs Trio':>8} {'throughput':>14} {'vs Trio':>8}")
        for name, r in results.items():
            print(f"{name:11} {r['rt/s']:14,.0f} {r['rt/s'] / base['rt/s']:8.2f} "
                  f"{r['MB/s']:10,.0f} MB/s {r['MB/s'] / base['MB/s']:8.2f}")
        """
    ),
    code(
        """
        fig, ax = plt.subplots(figsize=(7, 3))
        for i, (name, r) in enumerate(results.items()):
            latencies = sorted(t * 1e6 for t in r["latencies"])
            share = [(k + 1) / len(latencies) for k in range(len(latencies))]
            ax.plot(latencies, share, color=f"C{i}", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("round trip, microseconds (log scale)")
        ax.set_ylabel("share of round trips")
        ax.set_title("Demonstration: round-trip latency in this notebook (not a benchmark)",
                     fontsize=9)
        ax.legend(fontsize=8)
        plt.show()
        """
    ),
    md(
        """
        ## Exercise

        Write a handler that answers every line with the line in capitals, and answers
        **a burst of lines with one `send_all`**, not one per line. The first try below is
        right but makes one send per line. The check sends 200 lines in one write and counts
        your sends (at most 20 pass), and checks the answers when the bytes arrive one at a
        time and in random pieces. Hint: `trio_tcp.framing.LineFramer().feed(chunk)` gives
        every complete line of a chunk at once. (One solution:
        `trio_tcp.lessons.solutions.solution_batching`.)
        """
    ),
    code(
        """
        async def capitals(conn: trio_tcp.Connection) -> None:
            async for line in conn.lines():
                await conn.send_all(line.upper() + b"\\n")
        """
    ),
    code(
        """
        print(await trio_bg.run(lessons.check_batching_exercise, capitals))
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

# ---------------------------------------------------------------------------------------------
NB7: list[Cell] = [
    md(
        """
        # 7 · On the wire

        The other notebooks treat a connection as a pipe of bytes. This one looks at what the
        operating system does underneath, with real sockets on loopback, and reads the
        kernel's own table of sockets as it goes: addresses and ports, the handshake, how a
        connection ends (FIN or RST) and what each side then sees, half-close, where
        back-pressure lives (the kernel's buffers), a deadlock two polite programs can get
        into, and byte order.

        The kernel's table is `/proc/net/tcp` on Linux (`ss -tan` prints the same thing);
        `trio_tcp.lessons.kernel_sockets(port)` reads it and keeps the rows where `port` is
        at either end.
        """
    ),
    SETUP,
    code(
        """
        import socket
        import struct

        from trio_tcp.lessons import kernel_sockets


        def table(port: int, title: str) -> None:
            print(f"-- kernel's table, {title}:")
            for row in kernel_sockets(port):
                print(f"   {row.state:11} {row.local[0]}:{row.local[1]:<5} -> "
                      f"{row.peer[0]}:{row.peer[1]:<5} send queue {row.send_queue:>7} "
                      f"receive queue {row.receive_queue:>7}")
        """
    ),
    md(
        """
        ## Addresses, ports and the ephemeral port

        A TCP connection is named by four numbers: the two ends' addresses and ports. The
        server chose its port (here 0: "any free one", so the kernel picks). The client
        usually does not choose: the kernel gives it an **ephemeral port** from a range it
        keeps for that. And the kernel completes the connection (the three-way
        **handshake**: SYN, SYN-ACK, ACK) *before* the server program calls `accept`: the
        table already shows the connection established, and `accept` only hands it over.
        """
    ),
    code(
        """
        import shutil

        low, high = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        print(f"ephemeral ports on this machine: {low} to {high}")


        async def addresses() -> None:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            port = listeners[0].socket.getsockname()[1]
            table(port, "a listening socket")
            client = await trio_tcp.open_connection("127.0.0.1", port)
            print("client connected from", client.local, "to", client.peer)
            table(port, "after connect, before accept")
            if shutil.which("ss"):  # the same rows, as the usual tool prints them
                ss = await trio.run_process(
                    ["ss", "-tan", f"( sport = :{port} or dport = :{port} )"], capture_stdout=True
                )
                print("-- ss -tan says:\\n" + ss.stdout.decode().rstrip())
            server_side = await listeners[0].accept()
            print("accepted: the server's end is", server_side.socket.getsockname(),
                  "talking to", server_side.socket.getpeername())
            for resource in [client, server_side, *listeners]:
                await resource.aclose()


        await trio_bg.run(addresses)
        """
    ),
    md(
        """
        ## Connection refused

        When nothing listens on a port, the other machine's kernel answers the SYN with a
        **RST** (reset) and `connect` fails at once with `ConnectionRefusedError`. (When the
        machine does not answer at all, say a firewall drops the SYN, `connect` waits
        instead: that is what `open_connection(..., connect_timeout=...)` is for.)
        """
    ),
    code(
        """
        import os

        with socket.socket() as probe:  # find a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            free_port = probe.getsockname()[1]


        async def refused(port: int) -> None:
            try:
                await trio_tcp.open_connection("127.0.0.1", port)
            except OSError as exc:
                # Trio tries every address of the host; the cause holds each attempt's error.
                first = exc.__cause__.exceptions[0] if exc.__cause__ else exc
                print(f"connect to port {port}: {type(first).__name__} "
                      f"(errno {first.errno}, {os.strerror(first.errno)})")


        await trio_bg.run(refused, free_port)
        """
    ),
    md(
        """
        ## FIN and RST: two ways to end, and what the other side sees

        * **FIN** is the orderly end: "I will send nothing more". The peer reads whatever was
          still on its way, then **end of stream**: `receive_some` returns `b""`, and
          `receive_line` raises `trio_tcp.EndOfStream`. `aclose()` and a handler that
          returns send a FIN.
        * **RST** is the abort: "this connection is gone". Unread data is thrown away, and
          the peer's next read or write fails with **`trio.BrokenResourceError`** (the OS
          says `ECONNRESET`). A program crashing with unread input, or closing with
          `SO_LINGER` set to zero, sends one. Writing to a socket the peer has closed
          gets one back too (then `EPIPE`).

        Both ends' states, read from the kernel after each step, are drawn below.
        """
    ),
    code(
        """
        STEPS: dict[str, list[tuple[str, dict[str, str]]]] = {}


        def states(port: int, client_port: int) -> dict[str, str]:
            found = {"client": "(gone)", "server": "(gone)"}
            for row in kernel_sockets(port):
                if row.state == "LISTEN":
                    continue
                found["client" if row.local[1] == client_port else "server"] = row.state
            return found


        async def connected_pair(listener):
            client = await trio_tcp.open_connection("127.0.0.1", listener.socket.getsockname()[1])
            server_side = trio_tcp.Connection(await listener.accept())
            return client, server_side


        async def ending(kind: str) -> None:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            port = listeners[0].socket.getsockname()[1]
            client, server_side = await connected_pair(listeners[0])
            steps = STEPS[kind] = []

            def note(step: str) -> None:
                steps.append((step, states(port, client.local[1])))

            note("connected")
            await server_side.send_all(b"last words\\n")
            await trio.sleep(0.05)
            if kind == "FIN":
                await server_side.aclose()
                await trio.sleep(0.05)
                note("server aclose(): FIN")
                print("client reads:", await client.receive_line())
                try:
                    await client.receive_line()
                except trio_tcp.EndOfStream as exc:
                    print("client reads again: EndOfStream:", exc)
                await client.aclose()
                await trio.sleep(0.05)
                note("client aclose(): FIN")
            else:
                await client.send_all(b"unread by the server\\n")
                await trio.sleep(0.05)
                server_side.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                              struct.pack("ii", 1, 0))
                await server_side.aclose()
                await trio.sleep(0.05)
                note("server aborts: RST")
                for attempt in ["reads", "reads again"]:
                    try:
                        print(f"client {attempt}:", await client.receive_line())
                    except trio.BrokenResourceError as exc:
                        print(f"client {attempt}: BrokenResourceError:", exc.__cause__)
                await client.aclose()
                note("client aclose()")
            await listeners[0].aclose()


        async def write_after_fin() -> None:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            client, server_side = await connected_pair(listeners[0])
            await server_side.aclose()
            await client.send_all(b"are you there?\\n")  # the kernel takes it; the peer: RST
            await trio.sleep(0.05)
            try:
                await client.send_all(b"hello?\\n")
            except trio.BrokenResourceError as exc:
                print("writing to a closed peer, the second write: BrokenResourceError:",
                      exc.__cause__)
            await client.aclose()
            await listeners[0].aclose()


        for kind in ["FIN", "RST"]:
            print(f"--- {kind}")
            await trio_bg.run(ending, kind)
        print("---")
        await trio_bg.run(write_after_fin)
        for kind, steps in STEPS.items():
            print(f"{kind}: " + " | ".join(f"{step}: client {s['client']}, server {s['server']}"
                                           for step, s in steps))
        """
    ),
    code(
        """
        from matplotlib.patches import Rectangle

        COLORS = {"ESTABLISHED": "#4caf50", "FIN_WAIT1": "#ffb74d", "FIN_WAIT2": "#ff9800",
                  "CLOSE_WAIT": "#90caf9", "LAST_ACK": "#42a5f5", "TIME_WAIT": "#ce93d8",
                  "CLOSING": "#ffe082", "(gone)": "#eeeeee"}
        fig, axes = plt.subplots(2, 1, figsize=(9, 3.8))
        for ax, (kind, steps) in zip(axes, STEPS.items()):
            for col, (step, found) in enumerate(steps):
                for row, end in enumerate(["server", "client"]):
                    state = found[end]
                    ax.add_patch(Rectangle((col, row), 0.96, 0.9,
                                           color=COLORS.get(state, "#bdbdbd")))
                    ax.text(col + 0.48, row + 0.45, state, ha="center", va="center", fontsize=8)
            ax.set_xlim(0, len(steps))
            ax.set_ylim(0, 1.9)
            ax.set_xticks([c + 0.48 for c in range(len(steps))], [s for s, _ in steps],
                          fontsize=8)
            ax.set_yticks([0.45, 1.45], ["server end", "client end"])
            ax.set_title(f"{kind}: each end's state in the kernel's table after each step",
                         fontsize=9)
            ax.tick_params(length=0)
            for side in ax.spines.values():
                side.set_visible(False)
        fig.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        Read the FIN row: the server's FIN moves it to `FIN_WAIT2` ("I am done, waiting for
        your FIN") and the client to `CLOSE_WAIT` ("the peer is done; my program has not
        closed yet"; a `CLOSE_WAIT` that stays is a program that forgot to close). When the
        client closes too, its end is gone and the server's end waits in `TIME_WAIT` for a
        minute: the side that closed first keeps the four numbers reserved, so stray old
        packets cannot land in a new connection. In the RST row both ends are gone at once.
        The client could still read the line that had already arrived; after that its read
        fails with `BrokenResourceError`.

        ## Half-close

        A FIN closes **one direction**. After `send_eof()` the client can still read; the
        server sees end of stream and can still answer. This is how "here is my whole
        request, now reply" works without a length: the exercise at the end uses it.
        """
    ),
    code(
        """
        async def half_close() -> None:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            port = listeners[0].socket.getsockname()[1]
            client, server_side = await connected_pair(listeners[0])
            await client.send_all(b"three lines\\nof a request\\nand that is all\\n")
            await client.send_eof()
            request = b""
            while chunk := await server_side.receive_some():
                request += chunk
            await trio.sleep(0.05)
            table(port, "client sent its FIN, server read to the end")
            await server_side.send_all(b"%d bytes received\\n" % len(request))
            await server_side.aclose()
            print("client reads the answer after its own FIN:", await client.receive_line())
            await client.aclose()
            await listeners[0].aclose()


        await trio_bg.run(half_close)
        """
    ),
    md(
        """
        ## Partial sends and back-pressure in the kernel's buffers

        A socket's `send` hands bytes to the kernel and returns how many it took. The kernel
        keeps them in the sender's **send queue** until the peer acknowledges them, and the
        peer's kernel keeps them in its **receive queue** until the program reads. When both
        are full, a non-blocking `send` takes only part of what it was given (a **partial
        send**), then nothing at all (`BlockingIOError`). Trio's `send_all` loops over the
        partial sends and, when nothing is taken, **waits**: that wait is back-pressure.

        Below, plain non-blocking sockets: the server never reads; the client sends 64 KiB
        at a time until the kernel takes no more, and the table shows where the bytes are.
        """
    ),
    code(
        """
        queued = []  # (bytes taken by the kernel so far, client's send queue, server's receive queue)
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            with socket.create_connection(("127.0.0.1", port)) as sender:
                receiver, _ = listener.accept()
                with receiver:
                    sender.setblocking(False)
                    taken = 0
                    block = bytes(64 * 1024)
                    while True:
                        try:
                            sent = sender.send(block)
                        except BlockingIOError:
                            break
                        taken += sent
                        rows = {r.local[1]: r for r in kernel_sockets(port) if r.state != "LISTEN"}
                        queued.append((taken, rows[sender.getsockname()[1]].send_queue,
                                       rows[port].receive_queue))
                        if sent < len(block):
                            print(f"partial send: asked for {len(block)} bytes, "
                                  f"the kernel took {sent}")
                    print(f"the kernel took {taken / 1024:,.0f} KiB, then send() raised "
                          "BlockingIOError: a blocking socket (or send_all) would wait here")
                    table(port, "the receiver never reads")

        fig, ax = plt.subplots(figsize=(8, 3))
        x = [t / 1024 for t, _, _ in queued]
        ax.stackplot(x, [r / 1024 for _, _, r in queued], [s / 1024 for _, s, _ in queued],
                     labels=["in the receiver's receive queue", "in the sender's send queue"],
                     colors=["C0", "C1"])
        ax.set_xlabel("KiB taken by send() so far")
        ax.set_ylabel("KiB waiting in the kernel")
        ax.set_title("Where unread bytes wait: the kernel's queues fill, then send() stops",
                     fontsize=9)
        ax.legend(fontsize=8, loc="upper left")
        plt.show()
        """
    ),
    md(
        """
        ## The send/send deadlock

        Back-pressure has a trap. Two peers each send a lot **before** reading. Each one's
        `send_all` waits for the other to read, and neither reads: both wait forever. Any
        protocol where both sides may send much at once (an echo with a large message, a
        file copy both ways) can do this; Trio's documentation warns about it.

        The fix is to send and receive **at the same time**, in two tasks of one nursery.
        """
    ),
    code(
        """
        BIG = bytes(8 * 1024 * 1024)


        async def both_send_then_read(concurrently: bool) -> str:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            a, b = await connected_pair(listeners[0])
            for conn in (a, b):  # fixed buffers: 8 MiB is far more than they hold on any kernel
                conn.stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
                conn.stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)

            async def peer(conn: trio_tcp.Connection) -> None:
                if concurrently:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(conn.send_all, BIG)
                        await conn.receive_exactly(len(BIG))
                else:
                    await conn.send_all(BIG)
                    await conn.receive_exactly(len(BIG))

            with trio.move_on_after(1.0) as timer:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(peer, a)
                    nursery.start_soon(peer, b)
            for resource in [a, b, *listeners]:
                await trio.aclose_forcefully(resource)
            return "stuck: gave up after 1 s" if timer.cancelled_caught else "both done"


        print("send, then read:         ", await trio_bg.run(both_send_then_read, False))
        print("send and read together:  ", await trio_bg.run(both_send_then_read, True))
        """
    ),
    md(
        """
        ## Byte order in a length prefix

        A length prefix is a number sent as bytes, and a number of more than one byte can be
        written with its big end first or its little end first. The internet's convention,
        **network byte order**, is big-endian: 300 as two bytes is `01 2c`. Read those two
        bytes the other way round and the length is 11,265: the reader then waits for bytes
        that never come. `trio_tcp.framing.LengthPrefixFramer` uses network order, as does
        `struct`'s `"!"`.
        """
    ),
    code(
        """
        from trio_tcp.framing import LengthPrefixFramer

        header = (300).to_bytes(2, "big")
        print("300 as 2 bytes, big-endian:   ", trio_tcp.format_buffer(header))
        print("300 as 2 bytes, little-endian:", trio_tcp.format_buffer((300).to_bytes(2, "little")))
        print("struct.pack('!H', 300):       ", trio_tcp.format_buffer(struct.pack("!H", 300)))
        print("LengthPrefixFramer(2) header: ",
              trio_tcp.format_buffer(LengthPrefixFramer(2).encode(bytes(300))[:2]))
        print("01 2c read as little-endian:  ", int.from_bytes(header, "little"))
        """
    ),
    md(
        """
        ## Exercise

        Write a handler that reads **until the client half-closes** (its FIN: `receive_some`
        returns `b""`), then answers with the number of bytes it received, as a line (`6\\n`
        for `abcdef`), and returns. Below is a first try; run the check, read what it says,
        fix the handler and run both cells again. (One solution:
        `trio_tcp.lessons.solutions.solution_byte_count`.)
        """
    ),
    code(
        """
        async def count_bytes(conn: trio_tcp.Connection) -> None:
            chunk = await conn.receive_some()
            await conn.send_all(b"%d\\n" % len(chunk))
        """
    ),
    code(
        """
        from trio_tcp import lessons

        print(await trio_bg.run(lessons.check_byte_count_exercise, count_bytes))
        """
    ),
    CLOSE,
]

NOTEBOOKS: dict[str, list[Cell]] = {
    "01-your-first-tcp-server.ipynb": NB1,
    "02-bytes-not-messages.ipynb": NB2,
    "03-many-clients.ipynb": NB3,
    "04-cancellation-timeouts-shutdown.ipynb": NB4,
    "05-testing-your-server.ipynb": NB5,
    "06-how-fast-is-it.ipynb": NB6,
    "07-on-the-wire.ipynb": NB7,
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
