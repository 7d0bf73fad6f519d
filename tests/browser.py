"""Drive a real headless Chromium through the DevTools protocol, standard library only.

Chromium's ``--remote-debugging-pipe`` reads protocol commands from file descriptor 3 and
writes replies and events to descriptor 4, each a JSON message ended by a NUL byte: no
websocket library, no port to pick. :class:`Browser` opens a page, records console errors,
uncaught exceptions and failed loads, evaluates JavaScript in the page and takes
screenshots.

As a script it screenshots a page (docs/runtime.md's docs/report.png)::

    python tests/browser.py screenshot reports/examples/index.html docs/report.png
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Flags for a quiet, private, offline-friendly headless run.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(RuntimeError):
    """Chromium did not start, answer, or load the page in time."""


def find_chromium() -> str | None:
    """The Chromium executable: ``$CHROMIUM`` or the first of :data:`CANDIDATES` on PATH."""
    override = os.environ.get("CHROMIUM")
    if override:
        return override if shutil.which(override) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with one page, spoken to over the DevTools pipe.

    Use as a context manager; :meth:`open` loads a URL and waits for its load event.
    ``errors`` collects console errors, uncaught exceptions and failed resource loads.
    """

    def __init__(self, executable: str, width: int = 1280, height: int = 900, timeout=30.0):
        self.timeout = timeout
        self.errors: list[str] = []
        self._profile = tempfile.TemporaryDirectory(prefix="mammo-edge-chromium-")
        command_read, self._command_write = os.pipe()
        self._reply_read, reply_write = os.pipe()

        def attach_pipes() -> None:  # runs in the child between fork and exec
            high_in = fcntl.fcntl(command_read, fcntl.F_DUPFD, 10)
            high_out = fcntl.fcntl(reply_write, fcntl.F_DUPFD, 10)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self._process = subprocess.Popen(
            [
                executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self._profile.name}",
                f"--window-size={width},{height}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=attach_pipes,
            # Python's own descriptors are close-on-exec already; 3 and 4 (dup2'd in the
            # child) must survive exec, which closing "all other" descriptors would undo.
            close_fds=False,
        )
        os.close(command_read)
        os.close(reply_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=True)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._command_write, self._reply_read):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    # --- the protocol ------------------------------------------------------------------

    def send(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        """Send one command and return its ``result``; events meanwhile are recorded."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._command_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._record(reply)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._reply_read], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._reply_read, 1 << 16)
            if not chunk:
                raise BrowserError("Chromium closed the DevTools pipe (did it crash?)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _record(self, event: dict) -> None:
        self._events.append(event)
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
            self.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"uncaught exception: {description}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")

    # --- what tests use ------------------------------------------------------------------

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event (every image loaded or failed)."""
        self._events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + self.timeout
        while not any(event.get("method") == "Page.loadEventFired" for event in self._events):
            self._record(self._read(deadline))
        self.evaluate("new Promise(done => requestAnimationFrame(() => done(true)))")

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = True) -> None:
        """A PNG of the page (the whole document when ``full_page``)."""
        params: dict = {"format": "png"}
        if full_page:
            width, height = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params, session=True)["data"]
        Path(path).write_bytes(base64.b64decode(data))


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or argv[0] != "screenshot":
        print("usage: python tests/browser.py screenshot PAGE.html OUT.png [WIDTH]")
        return 1
    executable = find_chromium()
    if executable is None:
        print("no chromium found (apt-get install chromium, or set $CHROMIUM)")
        return 1
    width = int(argv[3]) if len(argv) == 4 else 1280
    with Browser(executable, width=width) as browser:
        browser.open(Path(argv[1]).resolve().as_uri())
        browser.screenshot(Path(argv[2]))
        for error in browser.errors:
            print(f"page error: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
