"""A headless Chromium driven over the DevTools protocol, for looking at the built docs.

Chromium speaks the protocol over a pair of pipes (``--remote-debugging-pipe``: it reads commands
from fd 3 and writes replies and events to fd 4, each message JSON ended by a NUL byte), which is
what Playwright and Puppeteer use too; so no websocket client and no port are needed.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

DEADLINE = 60.0  # seconds for any one step: a hang becomes a failure


def find_chromium() -> str | None:
    """The Chromium binary (Debian's package installs ``chromium``), or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    """What a page did while it loaded."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    text: str = ""
    screenshot: bytes = b""


class Browser:
    """One headless Chromium process; :meth:`visit` loads a page in a fresh tab."""

    def __init__(self, executable: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="trio-tcp-chromium-")
        commands_read, self._commands = os.pipe()  # we write commands, Chromium reads fd 3
        self._replies, replies_write = os.pipe()  # Chromium writes fd 4, we read
        argv = [
            executable,
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            "--hide-scrollbars",
            "--window-size=1280,900",
            "about:blank",
        ]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox

        def wire_pipes() -> None:
            # Move both ends out of the way first: either may already sit on fd 3 or 4.
            high_read = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10)
            high_write = fcntl.fcntl(replies_write, fcntl.F_DUPFD, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self._process = subprocess.Popen(
            argv,
            preexec_fn=wire_pipes,
            pass_fds=(3, 4),  # kept open after preexec_fn wired them
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._next_id = 0
        self._pending = b""
        self._events: list[dict[str, Any]] = []

    def close(self) -> None:
        with suppress(Exception):  # it may be gone already; the wait below settles it
            self.call("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._commands)
        os.close(self._replies)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._pending:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            if self._process.poll() is not None:
                raise RuntimeError(f"Chromium exited with status {self._process.returncode}")
            ready, _, _ = select.select([self._replies], [], [], 0.5)
            if ready:
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed its DevTools pipe")
                self._pending += chunk
        message, _, self._pending = self._pending.partition(b"\0")
        result: dict[str, Any] = json.loads(message)
        return result

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        request: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        os.write(self._commands, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + DEADLINE
        while True:
            message = self._receive(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                reply: dict[str, Any] = message.get("result", {})
                return reply
            self._events.append(message)

    def _wait_event(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self._events.pop(index)
            self._events.append(self._receive(deadline))

    def visit(self, url: str, *, screenshot: bool = False) -> PageReport:
        """Load ``url`` in a new tab, wait for it (images included), and report on it."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        try:
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable", session)
            self._events.clear()
            self.call("Page.navigate", session, url=url)
            self._wait_event("Page.loadEventFired", session)
            report = PageReport(url=url)
            state = self.call(
                "Runtime.evaluate",
                session,
                returnByValue=True,
                expression="""({
                    title: document.title,
                    text: document.body.innerText,
                    images: Array.from(document.images).map(i => ({
                        src: i.currentSrc || i.src, complete: i.complete,
                        width: i.naturalWidth, height: i.naturalHeight,
                    })),
                })""",
            )["result"]["value"]
            report.title, report.text, report.images = (
                state["title"],
                state["text"],
                state["images"],
            )
            if screenshot:
                # Show what a reader following a link sees: the target at the top.
                self.call(
                    "Runtime.evaluate",
                    session,
                    expression="location.hash && document.getElementById("
                    "decodeURIComponent(location.hash.slice(1)))?.scrollIntoView()",
                )
                data = self.call("Page.captureScreenshot", session, format="png")["data"]
                report.screenshot = base64.b64decode(data)
            for event in self._events:
                if event.get("sessionId") != session:
                    continue
                params = event.get("params", {})
                if event.get("method") == "Runtime.exceptionThrown":
                    details = params["exceptionDetails"]
                    description = details.get("exception", {}).get("description", "")
                    report.console_errors.append(f"exception: {details['text']} {description}")
                elif event.get("method") == "Runtime.consoleAPICalled" and params["type"] in {
                    "error",
                    "assert",
                }:
                    values = [
                        str(arg.get("value", arg.get("description"))) for arg in params["args"]
                    ]
                    report.console_errors.append("console.error: " + " ".join(values))
                elif (
                    event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error"
                ):
                    entry = params["entry"]
                    report.console_errors.append(
                        f"{entry['source']}: {entry['text']} {entry.get('url', '')}"
                    )
            return report
        finally:
            self.call("Target.closeTarget", targetId=target)


@contextmanager
def open_browser(executable: str) -> Iterator[Browser]:
    browser = Browser(executable)
    try:
        yield browser
    finally:
        browser.close()
