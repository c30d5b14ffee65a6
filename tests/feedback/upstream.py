"""A stand-in for a provider's API on loopback: its own sliding-window limit per API key, and its own 429s.

``Upstream(limit, window)`` serves HTTP/1.1 from threads. Every request with
the ``X-Api-Key`` header is counted against that key's sliding log; over the
limit it answers 429 with ``Retry-After`` (whole seconds until a slot frees,
as HTTP has it), ``X-RateLimit-Limit/Remaining/Reset`` and SURCHI's JSON body;
within it, 200 with the same headers. ``Reset`` is the Unix time at which the
counter returns to the limit (SURCHI's definition), with decimals. With
``advertise=False`` a 200 carries no such headers (as Struct and LaserSell). Nothing is
mocked: clients reach it through real sockets, and it records what it saw
(``accepted`` and ``refused`` arrival times), which is what the tests assert on.

Paths with a meaning of their own:
``/paid/...`` answers 402 (PolyNode's "Payment Required") without counting;
``/flaky/N/...`` answers 503 to the first N requests of that path, then counts normally;
``/scoped/...`` answers PolyNode's heavy-bucket 429 (``scope: v3_heavy``, ``reset_at`` 30 s ahead).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Upstream"]


class Upstream:
    """One local API server with a per-key sliding log of ``limit`` requests per ``window`` seconds."""

    def __init__(self, limit: int, window: float, advertise: bool = True) -> None:
        self.limit = limit
        self.window = window
        self.advertise = advertise
        self.lock = threading.Lock()
        self.logs: dict[str, deque[float]] = defaultdict(deque)
        self.accepted: list[float] = []
        self.refused: list[float] = []
        self.other: list[tuple[float, int, str]] = []
        self.flaky: dict[str, int] = defaultdict(int)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """Report the base URL, ``http://127.0.0.1:PORT``."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def decide(self, key: str, path: str) -> tuple[int, dict[str, str], bytes]:
        """Return the status, headers and body for a request of ``key`` to ``path``, and record it."""
        now = time.time()
        with self.lock:
            if path.startswith("/paid/"):
                self.other.append((now, 402, path))
                return 402, {}, b'{"error": "payment required"}'
            if path.startswith("/scoped/"):
                self.refused.append(now)
                body = {"error": "rate limit exceeded", "scope": "v3_heavy", "reset_at": int(now) + 30}
                return 429, {}, json.dumps(body).encode()
            if path.startswith("/flaky/"):
                failures = int(path.split("/")[2])
                self.flaky[path] += 1
                if self.flaky[path] <= failures:
                    self.other.append((now, 503, path))
                    return 503, {}, b"unavailable"
            log = self.logs[key]
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) >= self.limit:
                self.refused.append(now)
                retry_after = math.ceil(log[0] + self.window - now)
                headers = self._rate_headers(log, now)
                headers["Retry-After"] = str(max(1, retry_after))
                body = {
                    "error": "rate_limit_exceeded",
                    "error_description": f"You have exceeded your request limit of {self.limit} requests per window.",
                    "retry_after": max(1, retry_after),
                    "status": 429,
                }
                return 429, headers, json.dumps(body).encode()
            log.append(now)
            self.accepted.append(now)
            return 200, self._rate_headers(log, now) if self.advertise else {}, b'{"ok": true}'

    def _rate_headers(self, log: deque[float], now: float) -> dict[str, str]:
        reset = (log[-1] + self.window) if log else now
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - len(log))),
            "X-RateLimit-Reset": f"{reset:.3f}",
        }


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            key = self.headers.get("X-Api-Key", "anonymous")
            status, headers, body = upstream.decide(key, self.path.split("?", 1)[0])
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler
