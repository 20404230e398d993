"""TCP_NODELAY on every connection the API accepts (issue 11).

Without it, Nagle's algorithm holds the second small write of a response until the client's
delayed ACK (~40 ms): every request on a reused keep-alive connection waited for it. The
checks read the option on the *server's* end of a real connection, found among this
process's own file descriptors (the server runs in-process), so they are deterministic: no
timing is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.support.uvicorn_runner import serve_on_loopback, stop_serving
from tests.support.waiting import until
from wfrun.api.app import create_app
from wfrun.api.deps import API_PREFIX
from wfrun.cli.processes import _serve
from wfrun.runtime import Runtime

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
_LENGTH = re.compile(rb"content-length: (\d+)")


def server_end_nodelay(server_port: int, client_port: int) -> int:
    """TCP_NODELAY of the accepted socket ``127.0.0.1:server_port`` ↔ ``:client_port``."""
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue  # not a socket (or closed meanwhile)
        with sock, contextlib.suppress(OSError):
            if sock.family != socket.AF_INET:
                continue
            local, peer = sock.getsockname(), sock.getpeername()
            if local[1] == server_port and peer[1] == client_port:
                return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    raise AssertionError(f"no accepted socket on port {server_port} from {client_port}")


@contextlib.asynccontextmanager
async def keep_alive(port: int, path: str) -> AsyncIterator[int]:
    """Two requests on one connection, kept open; yields the client's port."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        for _ in range(2):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head.lower())
            await reader.readexactly(int(length.group(1)) if length else 0)
        yield writer.get_extra_info("sockname")[1]
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_wfrun_serve_sets_nodelay_on_accepted_connections(tmp_path, capsys):
    settings = make_settings(f"sqlite:///{tmp_path}/serve.db", tmp_path / "data")
    # uvicorn re-raises the SIGTERM that stops it once it has shut down: let it land here
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    serving = asyncio.create_task(
        _serve(settings.model_copy(update={"port": 0}), embedded_worker=False)
    )
    banner: list[str] = []

    async def announced() -> bool:
        if serving.done():
            await serving  # surfaces a start-up failure
        banner.extend(re.findall(r"serving http://127\.0\.0\.1:(\d+)", capsys.readouterr().out))
        return bool(banner)

    try:
        await until(announced, what="the serve banner naming the port")
        port = int(banner[0])
        async with keep_alive(port, f"{API_PREFIX}/docs") as client_port:
            assert server_end_nodelay(port, client_port) == 1
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own graceful shutdown
        await serving
        signal.signal(signal.SIGTERM, previous)


async def test_test_servers_set_nodelay_too(runtime: Runtime):
    """The tests' and stand-ins' loopback servers use the same socket (their latencies feed
    the benchmarks)."""
    app = create_app(runtime.settings, runtime=runtime)
    server, task, port = await serve_on_loopback(app, lifespan="on")
    try:
        async with keep_alive(port, f"{API_PREFIX}/docs") as client_port:
            assert server_end_nodelay(port, client_port) == 1
    finally:
        await stop_serving(server, task)
