"""Headless Chromium for the browser tests, driven over the DevTools protocol (no extra browser download).

Debian's ``chromium`` package is used; :func:`find_chromium` installs it with apt-get when it
is absent and the test runs as root, and says why it cannot otherwise. The flags are the
ones this machine's closed network needs: without the background-networking ones Chromium
keeps trying to reach Google's hosts, and those refused connections would drown the
failures a test looks for.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

from perf.services.process import stop_processes

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--hide-scrollbars", "--window-size=1280,800")


def find_chromium() -> tuple[str | None, str]:
    """``(path, "")`` of a Chromium binary, installing Debian's ``chromium`` if absent; else ``(None, why not)``."""
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path, ""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return None, "no chromium on PATH, and no apt-get or not root to install it (apt-get install chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "chromium"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            return None, f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-300:]}"
    path = shutil.which("chromium")
    return path, "" if path else "apt-get installed chromium but it is not on PATH"


@dataclass
class Page:
    """One browser tab: send DevTools commands, read the events it reported."""

    ws: websocket.WebSocket
    events: list[dict[str, Any]] = field(default_factory=list)
    loader_id: str = ""  # the document :meth:`goto` opened: requests of the page before it are not its
    _next_id: int = 0

    def send(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Call ``method`` and return its result, keeping every event that arrives meanwhile."""
        self._next_id += 1
        call_id = self._next_id
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"{method} got no answer in {timeout}s")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy; return its value, or raise naming it."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"{expression!r} still {value!r} after {timeout}s")

    def goto(self, url: str, *, timeout: float = 60.0) -> None:
        """Open ``url`` and wait for its load event."""
        self.events.clear()
        self.loader_id = self.send("Page.navigate", url=url)["loaderId"]
        deadline = time.monotonic() + timeout
        # Events were cleared before navigating: a load event now can only be the new document's.
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading in {timeout}s")
            self.evaluate("document.readyState")  # collects the events that arrived meanwhile
            time.sleep(0.1)

    def screenshot(self, path: Path) -> Path:
        """Save what the tab shows as a PNG at ``path``."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def _sent(self) -> dict[str, str]:
        """Request id -> URL of the requests the document :meth:`goto` opened made."""
        return {e["params"]["requestId"]: e["params"]["request"]["url"] for e in self.events
                if e["method"] == "Network.requestWillBeSent" and e["params"].get("loaderId") == self.loader_id}

    def requests(self) -> list[str]:
        """Every URL the page asked for since the last :meth:`goto`."""
        return list(self._sent().values())

    def failed_requests(self) -> list[str]:
        """Requests that failed (no answer, or an HTTP status of 400 and up), as ``url: reason``."""
        sent = self._sent()
        failed = [f"{sent[e['params']['requestId']]}: {e['params'].get('errorText')}"
                  for e in self.events if e["method"] == "Network.loadingFailed" and e["params"]["requestId"] in sent]
        failed += [f"{e['params']['response']['url']}: HTTP {e['params']['response']['status']}"
                   for e in self.events if e["method"] == "Network.responseReceived"
                   and e["params"]["requestId"] in sent and e["params"]["response"].get("status", 0) >= 400]
        return failed


@contextmanager
def open_browser(chromium: str) -> Iterator[Page]:
    """Start headless Chromium with a throwaway profile and yield its first tab, network events on."""
    with tempfile.TemporaryDirectory(prefix="perf-chromium-") as profile:
        proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                 "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text().strip():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{chromium} did not open its DevTools port (exit {proc.poll()})")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
                targets = json.load(answer)
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
            ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
            try:
                page = Page(ws)
                page.send("Page.enable")
                page.send("Network.enable")
                page.send("Runtime.enable")
                yield page
            finally:
                ws.close()
        finally:
            stop_processes(proc, timeout=10)
