"""The production options' error messages (`_cli_options.py`), through the real command line.

Each bad certificate, key or CA file is one line on stderr, exit 1, naming the flag, the file
and the problem, never OpenSSL's ``[SSL] PEM lib`` or ``cannot read None``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from _cli_process import ServeProcess, run_cli
from cryptography.hazmat.primitives import serialization


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of good and bad PEM files."""
    folder = tmp_path_factory.mktemp("pems")
    ca = trustme.CA()
    cert, other = ca.issue_cert("127.0.0.1"), ca.issue_cert("example.org")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(str(folder / "both.pem"))
    other.private_key_pem.write_to_path(str(folder / "other-key.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    (folder / "junk.pem").write_text("hello, I am not PEM\n")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
    (folder / "encrypted-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return folder


CASES: list[tuple[str, list[str], Callable[[Path], str]]] = [
    (
        "missing cert",
        ["--tls-cert", "missing.pem"],
        lambda d: f"--tls-cert {d}/missing.pem: cannot read it: no such file",
    ),
    (
        "cert is a folder",
        ["--tls-cert", "."],
        lambda d: f"--tls-cert {d}: cannot read it: it is a directory",
    ),
    (
        "cert without key",
        ["--tls-cert", "cert.pem"],
        lambda d: f"--tls-cert {d}/cert.pem: no private key in it; give the key with --tls-key",
    ),
    (
        "cert not PEM",
        ["--tls-cert", "junk.pem"],
        lambda d: f"--tls-cert {d}/junk.pem: not PEM (expected -----BEGIN CERTIFICATE-----)",
    ),
    (
        "key given as cert",
        ["--tls-cert", "key.pem"],
        lambda d: f"--tls-cert {d}/key.pem: it holds a private key but no certificate",
    ),
    (
        "missing key",
        ["--tls-cert", "cert.pem", "--tls-key", "nokey.pem"],
        lambda d: f"--tls-key {d}/nokey.pem: cannot read it: no such file",
    ),
    (
        "key not PEM",
        ["--tls-cert", "cert.pem", "--tls-key", "junk.pem"],
        lambda d: f"--tls-key {d}/junk.pem: not a PEM private key",
    ),
    (
        "key does not match",
        ["--tls-cert", "cert.pem", "--tls-key", "other-key.pem"],
        lambda d: f"--tls-key {d}/other-key.pem does not match the certificate in {d}/cert.pem",
    ),
    (
        "encrypted key",
        ["--tls-cert", "cert.pem", "--tls-key", "encrypted-key.pem"],
        lambda d: f"--tls-key {d}/encrypted-key.pem: the key is encrypted",
    ),
]


@pytest.mark.parametrize(("args", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_tls_files_name_the_file_and_the_problem(
    pems: Path, args: list[str], message: Callable[[Path], str]
) -> None:
    """`serve --tls-cert/--tls-key` with a bad file: exit 1, one line saying which and why."""
    paths = [str(pems / arg) if not arg.startswith("--") else arg for arg in args]
    result = run_cli("serve", "--port", "0", *paths)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("trio-tcp: error: " + message(pems)), result.stderr
    assert "PEM lib" not in result.stderr and "None" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_cert_says_permission_denied(tmp_path: Path) -> None:
    """A certificate the server may not read: the file and 'permission denied'."""
    path = tmp_path / "secret.pem"
    path.write_text("x")
    path.chmod(0)
    result = run_cli("serve", "--port", "0", "--tls-cert", str(path))
    assert result.returncode == 1
    assert (
        result.stderr == f"trio-tcp: error: --tls-cert {path}: cannot read it: permission denied\n"
    )


def test_good_tls_files_still_serve(pems: Path) -> None:
    """The checks pass real files: cert + key, and cert and key in one file."""
    for args in (["--tls-cert", "cert.pem", "--tls-key", "key.pem"], ["--tls-cert", "both.pem"]):
        server = ServeProcess("--port", "0", *[str(pems / a) if "pem" in a else a for a in args])
        try:
            sent = run_cli(
                "send", "--port", str(server.port), "--tls", "--cafile", str(pems / "ca.pem")
            )
            assert sent.returncode == 0, sent.stderr
            assert server.stop() == 0
        finally:
            server.kill()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.pem", "--cafile {}: cannot read it: no such file"),
        ("junk.pem", "--cafile {}: no PEM certificate in it"),
        ("key.pem", "--cafile {}: no PEM certificate in it"),
    ],
)
def test_bad_cafile_names_the_file_and_the_problem(pems: Path, name: str, message: str) -> None:
    """`send --tls --cafile BAD`: exit 1 before connecting, one line."""
    path = pems / name
    result = run_cli("send", "--port", "9", "--tls", "--cafile", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"trio-tcp: error: {message.format(path)}")
    assert result.stderr.count("\n") == 1


def test_address_in_use_has_one_phrasing() -> None:
    """A busy port reads the same for one server and for `--workers`."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        expected = f"trio-tcp: error: cannot listen on 127.0.0.1:{port}: address already in use\n"
        single = run_cli("serve", "--port", str(port))
        workers = run_cli("serve", "--port", str(port), "--workers", "2")
    assert (single.returncode, single.stderr) == (1, expected)
    assert (workers.returncode, workers.stderr) == (1, expected)
