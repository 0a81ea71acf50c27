"""``start_together``: several servers start and stop side by side, each stopped gracefully once."""

from __future__ import annotations

import sys
import time

import httpx
import pytest

from perf.services.server_process import ServerProcess, start_together

# A server that takes DELAY seconds to bind (imports, connections), then serves; on each stop
# signal it counts, and exits 0.5 s after the first with the count as its exit code: 1 means it
# was asked once, so it could shut down gracefully (a second SIGTERM makes uvicorn skip that).
SERVER = """
import http.server, signal, sys, threading, time
port, delay = int(sys.argv[1]), float(sys.argv[2])
signals = []
def on_term(*_):
    signals.append(1)
    if len(signals) == 1:
        threading.Timer(0.5, lambda: __import__("os")._exit(len(signals))).start()
signal.signal(signal.SIGTERM, on_term)
time.sleep(delay)
http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def slow_server(delay: float) -> ServerProcess:
    server = ServerProcess(name="slow", startup_timeout=20.0, stop_timeout=10.0)
    server.command = [sys.executable, "-c", SERVER, str(server.port), str(delay)]
    return server


def test_servers_start_side_by_side_and_each_is_stopped_once() -> None:
    servers = [slow_server(1.0) for _ in range(5)]
    started = time.perf_counter()
    with start_together(*servers) as up:
        took = time.perf_counter() - started
        assert list(up) == servers
        assert all(httpx.get(s.url + "/").status_code == 200 for s in servers)
    # One after the other this is >= 5 s of waiting; side by side about 1 s (5x, with a wide margin).
    assert took < 3.0, f"5 servers that each take 1 s to bind took {took:.1f} s to start together"
    assert not any(s.running for s in servers)
    assert [s.returncode for s in servers] == [1] * 5, "each server must get one stop signal, not two"


def test_one_that_fails_to_start_stops_the_others_and_raises_its_log() -> None:
    good = slow_server(0.0)
    broken = ServerProcess([sys.executable, "-c", "import sys; print('no config here'); sys.exit(3)"],
                           name="broken", startup_timeout=20.0)
    with pytest.raises(RuntimeError, match=r"(?s)broken did not start.*no config here"):
        with start_together(good, broken):
            pytest.fail("the block must not run when a server failed to start")
    assert not good.running and good.returncode == 1
