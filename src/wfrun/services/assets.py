"""Assets: uploads become owned, typed, expiring files; runs reference them as ``asset://``.

An asset's bytes are written to the object store before its row commits (a failed insert
removes them again), and retention deletes bytes only for expired assets that no queued or
running run references (``run_assets``), after a grace period that outlasts any submit.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from wfrun.clock import to_rfc3339, utcnow
from wfrun.db import assets as assets_db
from wfrun.db.assets import Asset
from wfrun.db.database import Connection, Database
from wfrun.domain.manifest import InputSpec, ValidatedInputs
from wfrun.domain.media import MediaRef, MediaSource, MediaValueError, classify_upload
from wfrun.errors import AssetExpired, AssetNotFound, InvalidAsset, InvalidWorkflowInput
from wfrun.services.accounts import Principal
from wfrun.storage.base import ObjectStore

PURPOSES = ("temp_input",)
DELETE_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Upload:
    """A file received into a local temporary path, with what the API learned while streaming."""

    path: Path
    size: int
    sha256: str
    head: bytes
    filename: str
    media_type: str | None
    purpose: str
    ttl_hours: int


def new_asset_id() -> str:
    return f"asset_{secrets.token_hex(16)}"


def storage_key(asset_id: str) -> str:
    return f"assets/{asset_id}"


async def create_asset(
    db: Database, storage: ObjectStore, principal: Principal, upload: Upload, *, max_ttl: int
) -> Asset:
    """Validate an upload and keep it as an asset of the caller.

    Raises:
        InvalidAsset: wrong purpose/ttl, or the bytes disagree with the declared type or name.
    """
    media_type, mime = _classify(upload, max_ttl)
    asset_id = new_asset_id()
    now = utcnow()
    await storage.put_file(storage_key(asset_id), upload.path, content_type=mime)
    values = {
        "id": asset_id,
        "account_id": principal.account_id,
        "media_type": media_type,
        "mime_type": mime,
        "size_bytes": upload.size,
        "sha256": upload.sha256,
        "filename": upload.filename,
        "purpose": upload.purpose,
        "storage_key": storage_key(asset_id),
        "created_at": now,
        "expires_at": now + timedelta(hours=upload.ttl_hours),
    }
    try:
        async with db.transaction(write=True) as conn:
            await assets_db.insert_asset(conn, values)
            row = await assets_db.find_asset(conn, asset_id)
    except BaseException:
        with contextlib.suppress(Exception):
            await storage.delete(storage_key(asset_id))
        raise
    assert row is not None
    return row


def _classify(upload: Upload, max_ttl: int) -> tuple[str, str]:
    if upload.purpose not in PURPOSES:
        raise InvalidAsset(f"purpose must be one of {', '.join(PURPOSES)}")
    if not 1 <= upload.ttl_hours <= max_ttl:
        raise InvalidAsset(f"ttl_hours must be between 1 and {max_ttl}")
    if upload.size == 0:
        raise InvalidAsset("the file is empty")
    try:
        return classify_upload(upload.media_type, upload.filename, upload.head)
    except MediaValueError as exc:
        raise InvalidAsset(str(exc)) from None


async def get_asset(db: Database, principal: Principal, asset_id: str) -> Asset:
    """The caller's asset. Raises AssetNotFound (also for others' assets) or AssetExpired."""
    async with db.transaction() as conn:
        row = await assets_db.find_asset(conn, asset_id, account_id=principal.account_id)
    if row is None:
        raise AssetNotFound(f"asset {asset_id} does not exist")
    problem = unusable(row, utcnow())
    if problem:
        raise AssetExpired(problem)
    return row


def unusable(asset: Asset, now: datetime) -> str | None:
    """Why an asset can no longer be used, or None."""
    if asset.deleted_at is not None or asset.expires_at <= now:
        return f"asset {asset.id} expired at {to_rfc3339(asset.expires_at)}"
    return None


def asset_id_of(ref: MediaRef) -> str:
    return ref.uri[len("asset://") :]


async def check_asset_refs(
    conn: Connection,
    principal: Principal,
    specs: Iterable[InputSpec],
    validated: ValidatedInputs,
    now: datetime,
) -> list[str]:
    """Check every ``asset://`` input against its manifest entry; returns the asset ids.

    Raises:
        InvalidWorkflowInput: unknown/foreign, expired, or the wrong type or size for the input.
    """
    by_key = {spec.key: spec for spec in specs}
    wanted = {
        asset_id_of(ref): key
        for key, refs in validated.media.items()
        for ref in refs
        if ref.source is MediaSource.ASSET
    }
    rows = await assets_db.find_assets(conn, list(wanted), account_id=principal.account_id)
    for asset_id, key in wanted.items():
        _check_one(by_key[key], asset_id, rows.get(asset_id), now)
    return list(wanted)


def _check_one(spec: InputSpec, asset_id: str, asset: Asset | None, now: datetime) -> None:
    label = f"input {spec.key}"
    if asset is None:
        raise InvalidWorkflowInput(f"{label}: asset {asset_id} does not exist")
    problem = unusable(asset, now)
    if problem:
        raise InvalidWorkflowInput(f"{label}: {problem}")
    if spec.type != "file" and asset.media_type != spec.type:
        raise InvalidWorkflowInput(
            f"{label} must be {spec.type}; asset {asset_id} is {asset.mime_type}"
        )
    if spec.accept and asset.mime_type not in spec.accept:
        raise InvalidWorkflowInput(
            f"{label}: asset {asset_id} is {asset.mime_type}; accepted: {', '.join(spec.accept)}"
        )
    if spec.max_size_bytes is not None and asset.size_bytes > spec.max_size_bytes:
        raise InvalidWorkflowInput(
            f"{label}: asset {asset_id} is {asset.size_bytes} bytes; the limit is "
            f"{spec.max_size_bytes}"
        )


async def sweep(db: Database, storage: ObjectStore, *, limit: int = 500) -> tuple[int, int]:
    """Delete the bytes of expired assets (no active run needs them) and of expired outputs.

    Returns (assets deleted, runs whose outputs were deleted).
    """
    now = utcnow()
    async with db.transaction() as conn:
        candidates = await assets_db.expired_unreferenced(conn, now - DELETE_GRACE, limit=limit)
    deleted_assets = 0
    for asset in candidates:
        async with db.transaction(write=True) as conn:
            if not await assets_db.mark_deleted(conn, asset.id, now):
                continue
        await storage.delete(asset.storage_key)
        deleted_assets += 1
    return deleted_assets, await _sweep_outputs(db, storage, now, limit)


async def _sweep_outputs(db: Database, storage: ObjectStore, now: datetime, limit: int) -> int:
    async with db.transaction() as conn:
        expired = await assets_db.expired_outputs(conn, now, limit=limit)
    for run in expired:
        async with db.transaction(write=True) as conn:
            await assets_db.mark_outputs_deleted(conn, run.id, now)
        for entry in (run.outputs or {}).values():
            for item in entry.get("files", []):
                await storage.delete(item["storage_key"])
    return len(expired)
