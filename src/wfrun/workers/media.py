"""Resolving a run's media inputs into bytes for the engine, outside any transaction.

``data:`` values are decoded; ``asset://`` values are read from the object store (retention
keeps them while the run is active); ``http(s)`` URLs are fetched through the SSRF-safe fetcher.
A refused or failed fetch, or fetched bytes that do not fit the input, fail the run.
"""

from __future__ import annotations

from wfrun.db.assets import Asset
from wfrun.domain.failures import FailureCode
from wfrun.domain.manifest import InputSpec, ValidatedInputs, check_media_bytes
from wfrun.domain.media import MediaRef, MediaSource
from wfrun.engines.base import EnginePermanent
from wfrun.engines.binding import media_filename
from wfrun.fetch import FetchError, SafeFetcher
from wfrun.services.assets import asset_id_of
from wfrun.storage.base import ObjectStore


class MediaUnavailable(EnginePermanent):
    """An input's media could not be obtained; ``code`` says why."""


async def resolve_media(
    validated: ValidatedInputs,
    specs: tuple[InputSpec, ...],
    assets: dict[str, Asset],
    storage: ObjectStore,
    fetcher: SafeFetcher,
) -> tuple[dict[str, bytes], dict[str, list[str]]]:
    """Bytes by engine file name, and the file names per input key."""
    by_key = {spec.key: spec for spec in specs}
    media: dict[str, bytes] = {}
    names: dict[str, list[str]] = {}
    for key, refs in validated.media.items():
        for index, ref in enumerate(refs):
            data, mime = await _bytes_of(by_key[key], ref, assets, storage, fetcher, index)
            name = media_filename(key, index, mime)
            media[name] = data
            names.setdefault(key, []).append(name)
    return media, names


async def _bytes_of(
    spec: InputSpec,
    ref: MediaRef,
    assets: dict[str, Asset],
    storage: ObjectStore,
    fetcher: SafeFetcher,
    index: int,
) -> tuple[bytes, str | None]:
    label = spec.key if index == 0 and not spec.multiple else f"{spec.key}[{index}]"
    if ref.source is MediaSource.DATA:
        return ref.data or b"", ref.mime_type
    if ref.source is MediaSource.ASSET:
        asset = assets[asset_id_of(ref)]
        try:
            return await storage.get(asset.storage_key), asset.mime_type
        except FileNotFoundError:
            raise MediaUnavailable(
                f"input {label}: the bytes of {ref.uri} are no longer stored",
                code=FailureCode.INPUT_ASSET_GONE,
            ) from None
    return await _fetch(spec, ref, fetcher, label)


async def _fetch(
    spec: InputSpec, ref: MediaRef, fetcher: SafeFetcher, label: str
) -> tuple[bytes, str | None]:
    try:
        fetched = await fetcher.fetch(ref.uri)
    except FetchError as exc:
        raise MediaUnavailable(f"input {label}: {exc.detail}", code=exc.code) from None
    check_media_bytes(spec, fetched.data, None, label)
    return fetched.data, fetched.content_type
