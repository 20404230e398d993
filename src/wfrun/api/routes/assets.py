"""POST /assets (multipart upload) and GET /assets/{asset_id} (+ /content)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from wfrun.api import wire
from wfrun.api.contract.catalog import AssetData
from wfrun.api.contract.envelope import documented, redirect
from wfrun.api.deps import PrincipalDep, RuntimeDep, api_base, links
from wfrun.api.uploads import receive_upload
from wfrun.db.assets import Asset
from wfrun.errors import InvalidParameter
from wfrun.runtime import Runtime
from wfrun.services import assets
from wfrun.services.accounts import Principal

router = APIRouter(prefix="/assets", tags=["assets"])

_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "media_type": {
                            "type": "string",
                            "enum": ["image", "video", "audio", "file"],
                        },
                        "purpose": {"type": "string", "enum": ["temp_input"]},
                        "ttl_hours": {"type": "integer", "minimum": 1},
                    },
                }
            }
        },
    }
}


_WHOLE_HOURS = re.compile("[0-9]{1,9}")
"""ASCII digits only: ``str.isdigit`` also takes ``²`` and ``٣``, which ``int`` refuses or reads."""


def _ttl(fields: dict[str, str], default: int) -> int:
    raw = fields.get("ttl_hours", "").strip()
    if not raw:
        return default
    if not _WHOLE_HOURS.fullmatch(raw):
        raise InvalidParameter(f"ttl_hours must be a whole number of hours, got {raw!r}")
    return int(raw)


@router.post(
    "",
    summary="Upload a file (multipart, at most 100 MB) as a temporary asset",
    openapi_extra=_UPLOAD_DOC,
    **documented(AssetData),
)
async def upload(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    created = await receive_asset(request, runtime, principal)
    data = wire.asset(created, links(request, runtime), api_base(request, runtime))
    return wire.ok(data, "上传成功")


async def receive_asset(request: Request, runtime: Runtime, principal: Principal) -> Asset:
    """Stream the request's multipart ``file`` into a new asset of ``principal`` (also the
    console's upload)."""
    limits = runtime.settings.assets
    received = await receive_upload(
        request, tmp_dir=runtime.settings.data_dir / "tmp", max_bytes=limits.max_upload_bytes
    )
    try:
        created = await assets.create_asset(
            runtime.db,
            runtime.storage,
            principal,
            assets.Upload(
                path=received.path,
                size=received.size,
                sha256=received.sha256,
                head=received.head,
                filename=received.filename,
                media_type=received.fields.get("media_type") or None,
                purpose=received.fields.get("purpose") or "temp_input",
                ttl_hours=_ttl(received.fields, limits.default_ttl_hours),
            ),
            max_ttl=limits.max_ttl_hours,
        )
    finally:
        received.path.unlink(missing_ok=True)
    return created


@router.get(
    "/{asset_id}",
    summary="One of the caller's assets, with fresh signed links",
    **documented(AssetData, 404),
)
async def get_asset(
    asset_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    found = await assets.get_asset(runtime.db, principal, asset_id)
    return wire.ok(wire.asset(found, links(request, runtime), api_base(request, runtime)))


@router.get(
    "/{asset_id}/content",
    summary="Redirect to a fresh signed download link",
    **redirect(404),
)
async def asset_content(
    asset_id: str, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> RedirectResponse:
    found = await assets.get_asset(runtime.db, principal, asset_id)
    return RedirectResponse(links(request, runtime).url(found.storage_key), status_code=307)
