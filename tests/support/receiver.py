"""A real webhook receiver on loopback for tests: records every request, answers what the test
scripts (per ``webhook-id``: a list of statuses, then 200), can hold requests until released,
and keeps a success log deduplicated by ``webhook-id`` as a careful receiver would."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float
    """Wall-clock arrival (``time.time()``), for latency measurements."""

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    url: str = ""
    failures_first: int = 0
    """Answer 500 to the first ``failures_first`` requests of every ``webhook-id``."""
    received: list[Received] = field(default_factory=list)
    successes: dict[str, Received] = field(default_factory=dict)
    """Accepted messages by ``webhook-id``: a redelivery of one is not a second event."""
    accepted: int = 0
    hold: bool = False
    """While true, a request blocks until ``release`` is set (``holding`` says one arrived)."""
    release: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        arrived = time.time()
        if self.hold:
            self.holding.set()
            self.release.wait(timeout=60)
        with self._lock:
            message = headers.get("webhook-id", "")
            seen = sum(1 for r in self.received if r.headers.get("webhook-id") == message)
            status = 500 if seen < self.failures_first else 200
            item = Received(path, headers, body, status, arrived)
            self.received.append(item)
            if status == 200:
                self.accepted += 1
                self.successes.setdefault(message, item)
            return status

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if f'"type":"{event_type}"'.encode() in r.body]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.answer(self.path, headers, body)
            answer = b'{"ok":true}' if status == 200 else b"receiver says no " * 200
            self.send_response(status)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@contextmanager
def running_receiver(**options: Any) -> Iterator[Receiver]:
    receiver = Receiver(**options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
