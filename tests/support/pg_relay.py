"""A loopback TCP relay in front of PostgreSQL that holds back what the client sends when
the test says so (all of it, or only what matches, e.g. a ``COMMIT``) until the test
releases it: a transaction paused at a chosen point, without sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import make_url


class Relay:
    def __init__(self, database_url: str) -> None:
        self.url = make_url(database_url)
        self.hold: Callable[[bytes], bool] = lambda sent: False
        """Which client data to hold back (checked per read)."""
        self.held = 0
        """How many reads were held back so far."""
        self._released = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._relaying: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        """Start relaying; the database URL that goes through the relay."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = int(self._server.sockets[0].getsockname()[1])
        return self.url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)

    def release(self) -> None:
        """Let what is held go on, and hold nothing more."""
        self.hold = lambda sent: False
        self._released.set()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._relaying:
            task.cancel()
        await asyncio.gather(*self._relaying, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._relaying.add(asyncio.current_task())  # type: ignore[arg-type]
        upstream = (self.url.host or "127.0.0.1", self.url.port or 5432)
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        await asyncio.gather(
            self._pipe(reader, up_writer, gated=True),
            self._pipe(up_reader, writer, gated=False),
            return_exceptions=True,
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, gated: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if gated and self.hold(data):
                    self.held += 1
                    await self._released.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
