"""Dispatch of a Seedance run: media hand-off (URLs or registered real-person material) and
exactly one upstream Ark task per run, then the run is parked for the tracker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from wfrun.domain.failures import FailureCode
from wfrun.domain.media import MediaRef, MediaSource
from wfrun.domain.seedance import VideoRequest
from wfrun.engines.base import EngineBusy, EnginePermanent, EngineTransient
from wfrun.engines.binding import extension
from wfrun.engines.seedance import wire
from wfrun.engines.seedance.ark import (
    ArkBusy,
    ArkCallError,
    ArkRejected,
    ArkUnknown,
)
from wfrun.engines.seedance.materials import MaterialError, MaterialRejected
from wfrun.services import provider_runs, real_person
from wfrun.services.ark_callbacks import callback_url
from wfrun.services.assets import asset_id_of, storage_key
from wfrun.services.claims import CancelRequested, Claim, create_outcome_unknown
from wfrun.services.seedance_deps import SeedanceDeps
from wfrun.workers.seedance.common import (
    ark_failure,
    discard,
    expires_after,
    request_of,
    safety_identifier,
)

log = logging.getLogger(__name__)


async def dispatch(deps: SeedanceDeps, claim: Claim, cancelled: Callable[[], bool]) -> None:
    """Create (or re-attach to) the run's upstream task and park the run for tracking.

    Raises:
        EngineTransient: retry later (Ark busy or unreachable; nothing billable was left).
        EnginePermanent: the request or its material was refused (the freeze is released).
        CancelRequested: the user cancelled before anything was created upstream.
    """
    first = timedelta(seconds=deps.settings.poll_min_seconds)
    if claim.run.provider_task_id:
        await provider_runs.park_existing(deps.db, claim, first_check=first)
        return
    video = request_of(claim)
    if cancelled() and create_outcome_unknown(claim.run):
        await _adopt_before_cancelling(deps, claim, video)
        return
    staged: list[str] = []
    try:
        urls, modes = await hand_off(deps, claim, video, staged, cancelled)
        if cancelled():  # the last moment at which nothing billable exists upstream
            raise CancelRequested()
        await _create_and_park(deps, claim, video, urls, modes, staged)
    except (EnginePermanent, CancelRequested):
        await discard(deps.storage, staged)  # no task will ever read them
        raise


async def _create_and_park(
    deps: SeedanceDeps,
    claim: Claim,
    video: VideoRequest,
    urls: list[str],
    modes: list[str],
    staged: list[str],
) -> None:
    first = timedelta(seconds=deps.settings.poll_min_seconds)
    arguments = wire.ark_create_arguments(
        video,
        urls=urls,
        safety_identifier=safety_identifier(claim.run.account_id),
        expires_after=expires_after(claim),
    )
    callback = callback_url(deps, claim.run.id)
    if callback is not None:
        arguments["callback_url"] = callback
    previous, started = await provider_runs.begin_create(deps.db, claim, staged=staged)
    task_id = await _reconcile(deps, arguments, previous) if previous else None
    if task_id is None:
        task_id = await _create(deps, arguments, started)
    note = f"created upstream task {task_id} ({video.model}); media: {', '.join(modes) or 'none'}"
    if not await provider_runs.record_task(deps.db, claim, task_id, first_check=first, note=note):
        raise EngineTransient(f"upstream task {task_id} is already another run's; reconciling")


async def _adopt_before_cancelling(deps: SeedanceDeps, claim: Claim, video: VideoRequest) -> None:
    """Cancelled after a create whose answer was lost: if Ark made the task, record it and
    let the tracker cancel it (or settle it, if it already rendered); else nothing exists
    upstream and the run is released."""
    since = datetime.fromisoformat((claim.run.provider_state or {})["create_started_at"])
    fingerprint = {
        "model": video.model,
        "safety_identifier": safety_identifier(claim.run.account_id),
        "execution_expires_after": expires_after(claim),
    }
    task_id = await _reconcile(deps, fingerprint, since)
    if task_id is None:
        raise CancelRequested()
    note = f"found upstream task {task_id} from an earlier attempt; cancelling it"
    first = timedelta(seconds=0)
    if not await provider_runs.record_task(deps.db, claim, task_id, first_check=first, note=note):
        raise EngineTransient(f"upstream task {task_id} is already another run's; reconciling")


async def _create(deps: SeedanceDeps, arguments: dict[str, Any], started: datetime) -> str:
    try:
        return await deps.ark.create(arguments)
    except ArkUnknown as exc:
        found = await _reconcile(deps, arguments, started)
        if found is not None:
            log.warning("create lost its answer (%s); adopted %s", exc.message, found)
            return found
        raise EngineTransient(f"{exc.message}; Ark lists no such task, will retry") from exc
    except ArkBusy as exc:  # 429: rate limit, concurrency or "too many queued tasks"
        raise EngineBusy(exc.message) from exc
    except ArkRejected as exc:
        raise ark_failure(exc.code, exc.message, during="create") from exc


async def _reconcile(deps: SeedanceDeps, arguments: dict[str, Any], since: datetime) -> str | None:
    """The task an earlier create of this run made, if Ark lists one."""
    claimed = await provider_runs.claimed_task_ids(deps.db, since=since - timedelta(days=1))
    try:
        return await deps.ark.find_created(
            model=arguments["model"],
            safety_identifier=arguments["safety_identifier"],
            expires_after=arguments["execution_expires_after"],
            since=int(since.timestamp()) - 120,  # clock skew between us and Ark
            exclude=claimed,
        )
    except ArkCallError as exc:
        raise EngineTransient(f"could not list Ark tasks to reconcile: {exc.message}") from exc


async def hand_off(
    deps: SeedanceDeps,
    claim: Claim,
    video: VideoRequest,
    staged: list[str],
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[list[str], list[str]]:
    """The URL Ark gets for each media item, and how each went (for the run's log).

    URL path: public URLs pass through; ``asset://`` and ``data:`` media become signed wfrun
    links. Real-person path: images and videos are registered as material first and Ark gets
    ``asset://<id>``; audio never is (§4.1). Inline (``data:``) media are staged in storage
    (their keys appended to ``staged``) and removed once the run ends."""
    urls: list[str] = []
    modes: list[str] = []
    for index, (kind, role, ref) in enumerate(wire.ark_media(video)):
        if cancelled():  # registrations can take minutes; stop between them
            raise CancelRequested()
        url = await _public_url(deps, claim, ref, index, staged)
        if video.real_person and kind in ("image", "video"):
            asset_id = await _register(deps, claim, url, kind, index)
            urls.append(f"asset://{asset_id}")
            modes.append(f"{role}→registered {asset_id}")
        else:
            urls.append(url)
            modes.append(f"{role}→url")
    return urls, modes


async def _public_url(
    deps: SeedanceDeps, claim: Claim, ref: MediaRef, index: int, staged: list[str]
) -> str:
    if ref.source is MediaSource.URL:
        return ref.uri
    if ref.source is MediaSource.ASSET:
        key = storage_key(asset_id_of(ref))
        if not await deps.storage.exists(key):
            raise EnginePermanent(
                f"input asset {asset_id_of(ref)} is no longer stored",
                code=FailureCode.INPUT_ASSET_GONE,
            )
        return deps.links.url(key)
    assert ref.data is not None
    assert ref.mime_type is not None
    key = f"runs/{claim.run.id}/inputs/{index}.{extension(ref.mime_type)}"
    await deps.storage.put(key, ref.data, content_type=ref.mime_type)
    staged.append(key)
    return deps.links.url(key)


async def _register(deps: SeedanceDeps, claim: Claim, url: str, kind: str, index: int) -> str:
    async with deps.db.transaction() as conn:
        own = await real_person.group_for(conn, claim.run.account_id)
    group = own or deps.settings.real_person_group_id
    if deps.materials is None or group is None:
        raise EnginePermanent(
            "real-person material registration is not configured on this server",
            code=FailureCode.REAL_PERSON_REGISTRATION_UNAVAILABLE,
        )
    name = f"wfrun-{claim.run.id}-{index}"
    try:
        return await deps.materials.register(group_id=group, url=url, kind=kind, name=name)
    except MaterialRejected as exc:
        if "SensitiveContent" in exc.code:
            raise ark_failure(exc.code, exc.message, during="create") from exc
        raise EnginePermanent(
            exc.message,
            code=FailureCode.REAL_PERSON_REGISTRATION_FAILED,
        ) from exc
    except MaterialError as exc:
        if exc.transient:
            raise EngineTransient(exc.message) from exc
        raise EnginePermanent(
            exc.message,
            code=FailureCode.REAL_PERSON_REGISTRATION_UNAVAILABLE,
        ) from exc
