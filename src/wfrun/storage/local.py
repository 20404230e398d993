"""Object storage in a local directory (the embedded default).

Writes go to a temporary file in the target directory and are renamed into place, so a reader
never sees half a file and a crash leaves no partial object under its final key.

Blocking I/O runs in a thread, except the write of a small object (:data:`INLINE_BYTES`): its
few system calls take tens of microseconds, while handing them to a thread costs the loop up to
the interpreter's switch interval (5 ms) whenever the loop is busy, since the thread must take
the GIL from it to start and the loop must take it back to resume (issue 11: storing a run's
output took 5.2 ms p50 of the engine-done path beside the API's requests; inline, 0.8 ms, most
of it creating the run's directories).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from wfrun.storage.base import check_key

INLINE_BYTES = 256 * 1024
"""Objects up to this size are written on the caller's thread (module docstring)."""


class LocalStorage:
    """Files under ``root``; blocking I/O runs in a thread, but for small writes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        def write(handle: BinaryIO) -> object:
            return handle.write(data)

        if len(data) <= INLINE_BYTES:
            self._write(key, write)
        else:
            await asyncio.to_thread(self._write, key, write)

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        await asyncio.to_thread(self._move_in, key, path)

    def _move_in(self, key: str, source: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)  # same filesystem: atomic, no copy
        except OSError:
            with source.open("rb") as handle:
                self._write(key, lambda out: shutil.copyfileobj(handle, out, 1024 * 1024))
            source.unlink(missing_ok=True)

    def _write(self, key: str, writer: Callable[[BinaryIO], object]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                writer(handle)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def presigned_url(self, key: str, expires_in: int) -> str | None:
        return None
