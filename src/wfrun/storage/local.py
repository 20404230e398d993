"""Object storage in a local directory (the embedded default).

Keys are relative POSIX paths (``runs/<run>/<attempt>/<file>``); writes go to a temporary file
and are renamed into place, so a reader never sees half a file and a crash leaves no partial
object under its final key.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class LocalStorage:
    """Files under ``root``; all blocking I/O runs in a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _SAFE_KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"unsafe storage key {key!r}")
        return self.root / key

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put_sync, key, data)

    def _put_sync(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    def local_path(self, key: str) -> Path | None:
        """The file behind ``key`` when it exists (for zero-copy responses)."""
        path = self._path(key)
        return path if path.is_file() else None
