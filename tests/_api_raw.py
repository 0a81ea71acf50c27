"""Raw-socket HTTP/1.1 for the API tests: send exact bytes, read one response, time the close."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawResponse:
    """A parsed response (``status`` 0: the server closed without answering)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def parse_response(data: bytes) -> RawResponse:
    """The first response in ``data`` (a whole connection's bytes)."""
    if not data:
        return RawResponse(0)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(rest)))
    return RawResponse(int(lines[0].split()[1]), headers, rest[:length])


def exchange(port: int, request: bytes, *, timeout: float = 10.0, linger: float = 0.0) -> RawResponse:
    """Send ``request`` on a new connection, half-close after ``linger`` s, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        if linger:
            time.sleep(linger)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                response = parse_response(b"".join(chunks))
                if response.status and len(response.body) >= int(response.headers.get("content-length", 1 << 30)):
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    return parse_response(b"".join(chunks))


def request_bytes(method: str, target: str, *, headers: dict[str, str] | None = None, body: bytes | None = None,
                  raw_headers: bytes = b"") -> bytes:
    """``method target HTTP/1.1`` with Host, Connection: close, ``headers`` and Content-Length for ``body``."""
    lines = [f"{method} {target} HTTP/1.1", "Host: test", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n" + raw_headers + b"\r\n" + (body or b"")


def closed_after(sock: socket.socket, drip: bytes = b"", every: float = 0.3) -> tuple[float, bytes]:
    """Drip ``drip`` a byte at a time until the server closes; (seconds until closed, bytes received)."""
    started = time.monotonic()
    received = b""
    sock.settimeout(every)
    for i in range(200):
        if i < len(drip):
            try:
                sock.sendall(drip[i:i + 1])
            except OSError:
                break
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        received += chunk
    return time.monotonic() - started, received
