"""trio_tcp.framing is sans-IO: it imports without trio, and its public surface is __all__."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import trio_tcp._exceptions
import trio_tcp.framing

FRAMING_DIR = Path(trio_tcp.framing.__file__).parent
PACKAGE_DIR = FRAMING_DIR.parent
FORBIDDEN = ("trio", "anyio", "asyncio", "socket", "selectors", "ssl")

# Runs in a fresh interpreter: the I/O modules are blocked (importing one raises ImportError)
# and trio_tcp is a bare package, so trio_tcp/__init__.py, which imports trio, never runs.
PROBE = f"""
import json, sys, types
for name in {FORBIDDEN!r}:
    sys.modules[name] = None
package = types.ModuleType("trio_tcp")
package.__path__ = [{str(PACKAGE_DIR)!r}]
sys.modules["trio_tcp"] = package

from trio_tcp.framing import LengthPrefixFramer, LineFramer, NetstringFramer

lines = LineFramer()
length = LengthPrefixFramer(2)
netstrings = NetstringFramer()
print(json.dumps({{
    "lines": [line.decode() for line in lines.feed(b"a\\r\\nb\\n" + lines.encode(b"c"))],
    "length": [f.decode() for f in length.feed(length.encode(b"hi") + length.encode(b""))],
    "netstrings": [f.decode() for f in netstrings.feed(b"3:abc," + netstrings.encode(b"d"))],
    "loaded": sorted(
        name for name in {FORBIDDEN!r}
        if sys.modules.get(name) is not None
        or any(module.startswith(name + ".") for module in sys.modules)
    ),
    "ran_package_init": hasattr(package, "__all__"),
}}))
"""


def test_framing_imports_and_works_without_trio() -> None:
    """In an interpreter where trio, anyio, asyncio and socket cannot load, framers work."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "lines": ["a", "b", "c"],
        "length": ["hi", ""],
        "netstrings": ["abc", "d"],
        "loaded": [],
        "ran_package_init": False,
    }


def imported_modules(source: str) -> list[tuple[str, int]]:
    """Every module a framing file imports, relative ones resolved against trio_tcp.framing."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.module or "", node.lineno))
            else:
                base = ["trio_tcp", "framing"][: 3 - node.level]
                names = [node.module] if node.module else [alias.name for alias in node.names]
                found += [(".".join([*base, name]), node.lineno) for name in names]
    return found


def forbidden_imports(source: str) -> list[str]:
    """The imports of I/O libraries, or of trio_tcp modules outside framing and _exceptions."""
    offenders = []
    for module, line in imported_modules(source):
        inside = module.startswith("trio_tcp.")
        allowed = module == "trio_tcp._exceptions" or module.startswith("trio_tcp.framing.")
        if module.split(".")[0] in FORBIDDEN or (inside and not allowed):
            offenders.append(f"{line}: {module}")
    return offenders


def test_no_framing_module_imports_io() -> None:
    """No file in trio_tcp/framing imports an I/O library or a trio_tcp module that does."""
    files = sorted(FRAMING_DIR.glob("*.py"))
    assert FRAMING_DIR / "_buffer.py" in files
    offenders = [
        f"{path.name}:{offender}"
        for path in files
        for offender in forbidden_imports(path.read_text())
    ]
    assert offenders == []


def test_import_checker_catches_every_import_form() -> None:
    """The static check flags plain, dotted, from- and relative imports of I/O code."""
    source = (
        "import os, trio.lowlevel\n"
        "from anyio import to_thread\n"
        "from .. import _connection\n"
        "from .._exceptions import LocalProtocolError\n"
        "from ._buffer import ReceiveBuffer\n"
        "def later():\n"
        "    import socket\n"
    )
    assert forbidden_imports(source) == [
        "1: trio.lowlevel",
        "2: anyio",
        "3: trio_tcp._connection",
        "7: socket",
    ]


def test_public_surface_is_all() -> None:
    """Every name in __all__ exists, and every other public name is listed in __all__."""
    namespace = vars(trio_tcp.framing)
    assert all(name in namespace for name in trio_tcp.framing.__all__)
    public = {
        name
        for name, value in namespace.items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(trio_tcp.framing.__all__)
    assert len(trio_tcp.framing.__all__) == len(set(trio_tcp.framing.__all__))


def test_exceptions_are_the_trio_tcp_classes() -> None:
    """The re-exported errors are the very classes of trio_tcp._exceptions."""
    for name in (
        "FrameTooLargeError",
        "IncompleteFrameError",
        "LineTooLongError",
        "LocalProtocolError",
        "MalformedFrameError",
        "ProtocolError",
        "RemoteProtocolError",
    ):
        assert getattr(trio_tcp.framing, name) is getattr(trio_tcp._exceptions, name)


def test_every_public_name_and_method_has_a_docstring() -> None:
    """Public classes, and their public methods and properties, are documented."""
    missing = []
    for name in trio_tcp.framing.__all__:
        value = getattr(trio_tcp.framing, name)
        if not inspect.isclass(value):
            continue
        if not (value.__doc__ or "").strip():
            missing.append(name)
        if issubclass(value, Exception):
            continue
        for attribute, member in vars(value).items():
            if attribute.startswith("_") and attribute not in ("__getitem__", "__len__"):
                continue
            documentable = callable(member) or isinstance(member, property)
            if documentable and not (member.__doc__ or "").strip():
                missing.append(f"{name}.{attribute}")
    assert missing == []
