"""GET /files/{key}: stored files behind signed, expiring links (no API key needed)."""

from __future__ import annotations

import mimetypes
import time

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from wfrun.api.contract.envelope import binary
from wfrun.api.deps import RuntimeDep
from wfrun.errors import FileNotFound

router = APIRouter(tags=["files"])


@router.get(
    "/files/{key:path}",
    summary="Download a stored file through a signed link",
    **binary(403, 404),
)
async def download(
    key: str,
    runtime: RuntimeDep,
    expires: int = Query(ge=0),
    signature: str = Query(min_length=64, max_length=64),
) -> FileResponse:
    runtime.signer.verify(key, expires, signature, now=int(time.time()))
    path = runtime.storage.local_path(key)
    if path is None:
        raise FileNotFound(f"{key} is no longer stored")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, filename=path.name)
