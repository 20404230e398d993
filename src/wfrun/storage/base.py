"""The object-store port: where uploaded assets and run outputs live.

Keys are relative POSIX paths (``assets/<id>``, ``runs/<run>/<attempt>/<key>/<file>``), made of
``[A-Za-z0-9._-]`` segments. Backends: :class:`wfrun.storage.local.LocalStorage` (the embedded
default) and :class:`wfrun.storage.s3.S3Storage` (any S3-compatible store).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise ValueError."""
    if not SAFE_KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"unsafe storage key {key!r}")
    return key


class ObjectStore(Protocol):
    """Blocking work happens off the event loop in every implementation."""

    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store ``data`` under ``key`` atomically (readers never see a partial object)."""
        ...

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        """Store the file at ``path`` (streamed, never read whole into memory); ``path`` is
        consumed: it no longer exists afterwards."""
        ...

    async def get(self, key: str) -> bytes:
        """The object's bytes. Raises FileNotFoundError when absent."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the object; absent objects are fine."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A file on this machine holding the object (local backend), else None."""
        ...

    def presigned_url(self, key: str, expires_in: int) -> str | None:
        """A time-limited direct download URL the store signs itself (S3), else None (wfrun then
        serves the object through its own HMAC-signed ``/files`` links)."""
        ...
