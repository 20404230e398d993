"""Test doubles for the fetcher: a tiny HTTP/1.1 server, a tripwire listener, a stub resolver.

Everything listens on loopback only. The fetcher itself is never mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["fixed", "chunked", "endless", "stall", "drip", "head-only"]
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Reply:
    """What the server answers for one path.

    ``fixed`` sends Content-Length; ``chunked`` the same body chunked; ``endless`` chunked
    data until the client goes away; ``stall`` never answers; ``drip`` sends headers then one
    byte every 50 ms; ``head-only`` sends status and ``headers`` verbatim, then stalls.
    """

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    mode: Mode = "fixed"


@dataclass(frozen=True)
class Seen:
    """One request as received."""

    path: str
    headers: dict[str, str]
    local: tuple[str, int]


@dataclass
class HttpServer:
    """A minimal HTTP/1.1 responder; one request per connection unless ``keep_alive``."""

    routes: dict[str, Reply] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    keep_alive: bool = False
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Listen on ``host:port`` (0 picks a port); returns the port."""
        if tls is not None:
            tls.sni_callback = self._record_sni
        self._server = await asyncio.start_server(self._serve, host, port, ssl=tls)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    def _record_sni(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

    async def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; True if the connection stays open for another."""
        head = await reader.readuntil(b"\r\n\r\n")
        seen = _parse(head, writer.get_extra_info("sockname"))
        self.requests.append(seen)
        reply = self.routes.get(seen.path, Reply(404, b"no such path"))
        wants_close = seen.headers.get("connection", "").lower() == "close"
        keep = self.keep_alive and not wants_close and reply.mode == "fixed"
        await self._write(reply, writer, keep)
        return keep

    async def _write(self, reply: Reply, writer: asyncio.StreamWriter, keep: bool) -> None:
        extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers)
        connection = "keep-alive" if keep else "close"
        status = f"HTTP/1.1 {reply.status} X\r\nConnection: {connection}\r\n{extra}"
        if reply.mode == "fixed":
            writer.write(f"{status}Content-Length: {len(reply.body)}\r\n\r\n".encode())
            writer.write(reply.body)
        elif reply.mode == "head-only":
            writer.write(f"{status}\r\n".encode())
        else:
            writer.write(f"{status}Transfer-Encoding: chunked\r\n\r\n".encode())
        await writer.drain()
        await self._body(reply, writer)

    async def _body(self, reply: Reply, writer: asyncio.StreamWriter) -> None:
        if reply.mode == "chunked":
            for start in range(0, len(reply.body), CHUNK):
                await _chunk(writer, reply.body[start : start + CHUNK])
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        elif reply.mode == "endless":
            for _ in range(1000):  # bounded: about 64 MB
                await _chunk(writer, b"x" * CHUNK)
        elif reply.mode == "drip":
            while not self._stopped.is_set():
                await _chunk(writer, b"x")
                await asyncio.sleep(0.05)
        elif reply.mode in ("stall", "head-only"):
            await self._stopped.wait()


async def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


def _parse(head: bytes, sockname: tuple[str, int]) -> Seen:
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return Seen(path=path, headers=headers, local=(sockname[0], sockname[1]))


@dataclass
class Tripwire:
    """A listener that must never be connected to; every accepted connection is recorded."""

    hits: list[tuple[str, int]] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._hit, host, port)

    async def _hit(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self.hits.append((peer[0], peer[1]))
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class StubResolver:
    """Answers from a table; each host maps to successive answers (the last one repeats)."""

    def __init__(self, table: Mapping[str, Sequence[Sequence[str]]]) -> None:
        self._table = table
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        count = sum(1 for called, _ in self.calls if called == host)
        self.calls.append((host, port))
        answers = self._table.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, f"stub: unknown host {host}")
        return list(answers[min(count, len(answers) - 1)])


def free_port(host: str) -> int:
    """A port that was free on ``host`` a moment ago (nothing listens on it)."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
