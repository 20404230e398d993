"""Fixtures: a legit server on 127.0.0.2:P, a tripwire on 127.0.0.1:P, and a connect guard.

The guard wraps ``socket.socket.connect`` for every test in this package: it records each
outgoing connect and blocks any that is not to a loopback address, so a broken fetcher can
never send traffic off the machine, and tests can assert that a refusal happened before ANY
connection was attempted.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fetch.support import HttpServer, Tripwire

LEGIT_HOST = "127.0.0.2"
TRIPWIRE_HOST = "127.0.0.1"


@dataclass
class Servers:
    """The legit server and the tripwire, listening on the same port of two addresses."""

    port: int
    legit: HttpServer
    tripwire: Tripwire

    @property
    def base(self) -> str:
        return f"http://{LEGIT_HOST}:{self.port}"


@pytest.fixture(autouse=True)
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every outgoing TCP connect made during the test, as (host, port)."""
    attempts: list[tuple[str, int]] = []
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple):
            host, port = str(address[0]), int(address[1])
            attempts.append((host, port))
            if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
                raise OSError(errno.ENETUNREACH, f"test guard blocked connect to {host}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded)
    return attempts


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    """Start both listeners; on teardown the tripwire must not have been touched."""
    legit, tripwire, port = await _start_pair()
    try:
        yield Servers(port=port, legit=legit, tripwire=tripwire)
    finally:
        await legit.stop()
        await tripwire.stop()
    assert tripwire.hits == [], f"tripwire on {TRIPWIRE_HOST}:{port} was connected to"


async def _start_pair() -> tuple[HttpServer, Tripwire, int]:
    for _ in range(20):
        legit, tripwire = HttpServer(), Tripwire()
        port = await legit.start(LEGIT_HOST, 0)
        try:
            await tripwire.start(TRIPWIRE_HOST, port)
        except OSError:
            await legit.stop()
            continue
        return legit, tripwire, port
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")
