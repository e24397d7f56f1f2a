"""The pytest plugin, run in an inner pytest session with pytester."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTING_PAGE = Path(__file__).resolve().parent.parent / "docs" / "howto" / "testing.md"

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")

TRIO_MODE_INI = "[pytest]\ntrio_mode = true\nfilterwarnings = error\n"

SERVER_TESTS = """
import trio
import trio_tcp


async def echo(conn):
    async for chunk in conn:
        await conn.send_all(chunk)


async def exchange(server):
    with trio.fail_after(5):
        async with await server.connect() as client:
            await client.send_all(b"ping")
            return await client.receive_exactly(4)


async def test_tcp(tcp_server):
    server = await tcp_server(echo)
    assert server.port and server.addresses == [("127.0.0.1", server.port)]
    assert await exchange(server) == b"ping"


async def test_memory(memory_server):
    server = await memory_server(echo)
    assert server.addresses == [None]
    assert await exchange(server) == b"ping"


async def test_each_transport(transport_server, transport):
    server = await transport_server(echo)
    assert await exchange(server) == b"ping"
    assert server.stats.accepted == 1
"""


def test_fixtures_work_in_trio_mode(pytester: pytest.Pytester) -> None:
    """tcp_server, memory_server and transport_server (4 transports) pass in trio_mode."""
    pytester.makeini(TRIO_MODE_INI)
    pytester.makepyfile(test_servers=SERVER_TESTS)
    result = pytester.runpytest_inprocess("-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        ["*test_each_transport?memory? PASSED*", "*test_each_transport?unix? PASSED*"]
    )


def test_fixtures_work_with_explicit_trio_marks(pytester: pytest.Pytester) -> None:
    """Without trio_mode, @pytest.mark.trio tests get the fixtures too."""
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    marked = SERVER_TESTS.replace("\nasync def test_", "\n@pytest.mark.trio\nasync def test_")
    pytester.makepyfile(test_servers="import pytest\n" + marked)
    pytester.runpytest_inprocess().assert_outcomes(passed=6)


def test_transports_marker_restricts_the_parametrization(pytester: pytest.Pytester) -> None:
    """@pytest.mark.transports("memory", "tcp") runs the test twice, on those two only."""
    pytester.makeini(TRIO_MODE_INI)
    pytester.makepyfile(
        test_marker="""
import pytest

@pytest.mark.transports("memory", "tcp")
async def test_two(transport_server, transport):
    assert transport in ("memory", "tcp")
"""
    )
    result = pytester.runpytest_inprocess("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_two?memory?*", "*test_two?tcp?*"])


def test_a_handler_that_raises_fails_the_test(pytester: pytest.Pytester) -> None:
    """A handler error fails the test, with its traceback; allowed ones pass."""
    pytester.makeini(TRIO_MODE_INI)
    pytester.makepyfile(
        test_raising="""
import trio

async def broken(conn):
    await conn.receive_some()
    raise ValueError("handler bug 42")

async def poke(server):
    with trio.fail_after(5):
        async with await server.connect() as client:
            await client.send_all(b"x")
            assert await client.receive_some() == b""

async def test_fails(memory_server):
    await poke(await memory_server(broken))

async def test_allowed(tcp_server):
    await poke(await tcp_server(broken, allow_handler_errors=True))
"""
    )
    result = pytester.runpytest_inprocess()
    # pytest-trio runs fixture teardown inside the test's Trio run: the test itself fails.
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*1 handler(s) raised (memory server)*", "*ValueError: handler bug 42*"]
    )
    result.stdout.fnmatch_lines(["FAILED test_raising.py::test_fails*"])


def test_plugin_imports_without_trio() -> None:
    """Loading the plugin (as pytest does for every run) imports neither trio nor trio_tcp."""
    plugin = Path(__file__).resolve().parent.parent / "trio_tcp" / "testing" / "_plugin.py"
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('plugin', {str(plugin)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('trio', 'trio_tcp')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_docs_testing_example_passes(pytester: pytest.Pytester) -> None:
    """The docs' "Testing your server" example is a test file that passes as written."""
    text = TESTING_PAGE.read_text()
    [example] = re.findall(r"```python\n(# test_echo.py\n.*?)```", text, flags=re.DOTALL)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_echo=example)
    pytester.runpytest_inprocess().assert_outcomes(passed=7)
