"""Seedance runs on Volcengine Ark: dispatch (media hand-off, one upstream task) and tracking.

Dispatch runs in a worker slot for a few seconds: it turns the run's media into URLs Ark can
read (or registers real-person material and uses ``asset://`` ids), creates the task with the
SDK's retries off and reconciles a lost answer against Ark's task list, so a retried step never
makes a second billable task; then it parks the job. The :class:`Tracker` checks parked runs in
batches (one list call per 500 tasks), with a check interval that grows with the task's age,
and finishes those whose task ended: downloads the video into wfrun storage and settles by the
usage Ark reports, or releases the freeze.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from wfrun.clock import utcnow
from wfrun.config import SeedanceSettings
from wfrun.domain import seedance
from wfrun.domain.manifest import validate_inputs
from wfrun.domain.media import MediaRef, MediaSource
from wfrun.domain.seedance import PriceBook, VideoRequest
from wfrun.engines.base import EngineBusy, EnginePermanent, EngineTransient
from wfrun.engines.seedance.ark import (
    ArkBusy,
    ArkCallError,
    ArkGateway,
    ArkRejected,
    ArkUnknown,
    TaskView,
)
from wfrun.engines.seedance.materials import MaterialError, MaterialRegistry, MaterialRejected
from wfrun.services import execution, provider_runs, real_person
from wfrun.services.assets import asset_id_of, storage_key
from wfrun.services.execution import CancelRequested, Claim, Failure
from wfrun.services.provider_runs import Tracked
from wfrun.services.runs import video_request
from wfrun.storage.base import ObjectStore
from wfrun.storage.links import Links
from wfrun.storage.signing import UrlSigner
from wfrun.store.database import Database
from wfrun.workers.failures import engine_failure

log = logging.getLogger(__name__)
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
}


@dataclass(frozen=True)
class SeedanceDeps:
    db: Database
    storage: ObjectStore
    ark: ArkGateway
    links: Links
    prices: PriceBook
    settings: SeedanceSettings
    materials: MaterialRegistry | None = None
    output_retention: timedelta = timedelta(days=7)
    signer: UrlSigner | None = None
    """Signs callback URLs (with ``settings.callback_base_url``)."""


CALLBACK_PATH = "/provider/ark/callback"


def callback_key(run_id: str) -> str:
    return f"ark-callback/{run_id}"


def callback_url(deps: SeedanceDeps, run_id: str) -> str | None:
    """The signed URL Ark POSTs this run's task status to, when callbacks are configured."""
    base = deps.settings.callback_base_url
    if not base or deps.signer is None:
        return None
    expires = int(time.time()) + deps.settings.execution_expires_after + 86_400
    signature = deps.signer.signature(callback_key(run_id), expires)
    return f"{base.rstrip('/')}{CALLBACK_PATH}/{run_id}?expires={expires}&signature={signature}"


def safety_identifier(account_id: str) -> str:
    """§1.3: a stable per-end-user id, a hash of ours (≤ 64 characters)."""
    return "wfrun-" + hashlib.sha256(account_id.encode()).hexdigest()[:48]


def request_of(claim: Claim) -> VideoRequest:
    validated = validate_inputs(claim.spec.inputs, claim.run["inputs"])
    return video_request(claim.spec, validated, claim.run["inputs"])


# ---- dispatch ----------------------------------------------------------------------------


async def dispatch(deps: SeedanceDeps, claim: Claim, cancel_requested: bool) -> None:
    """Create (or re-attach to) the run's upstream task and park the run for tracking.

    Raises:
        EngineTransient: retry later (Ark busy or unreachable; nothing billable was left).
        EnginePermanent: the request or its material was refused (the freeze is released).
        CancelRequested: the user cancelled before anything was created upstream.
    """
    first = timedelta(seconds=deps.settings.poll_min_seconds)
    if claim.run["provider_task_id"]:
        await provider_runs.park_existing(deps.db, claim, first_check=first)
        return
    video = request_of(claim)
    staged: list[str] = []
    try:
        urls, modes = await hand_off(deps, claim, video, staged)
        if cancel_requested:
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
    arguments = seedance.ark_create_arguments(
        video,
        urls=urls,
        safety_identifier=safety_identifier(claim.run["account_id"]),
        expires_after=seedance.fingerprint_expiry(
            claim.run["id"], deps.settings.execution_expires_after
        ),
    )
    callback = callback_url(deps, claim.run["id"])
    if callback is not None:
        arguments["callback_url"] = callback
    previous, started = await provider_runs.begin_create(deps.db, claim, staged=staged)
    task_id = await _reconcile(deps, arguments, previous) if previous else None
    if task_id is None:
        task_id = await _create(deps, arguments, started)
    note = f"created upstream task {task_id} ({video.model}); media: {', '.join(modes) or 'none'}"
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
            since=int(since.timestamp()) - 5,
            exclude=claimed,
        )
    except ArkCallError as exc:
        raise EngineTransient(f"could not list Ark tasks to reconcile: {exc.message}") from exc


def ark_failure(code: str, message: str, *, during: str) -> EnginePermanent:
    failure = seedance.classify_ark_code(code, during=during)
    detail = message
    if failure.engine_code == "CONTENT_REAL_PERSON_DETECTED":
        detail += (
            "; resubmit with contains_real_person_material: true to register the material "
            "(a verified person's authorisation is required)"
        )
    return EnginePermanent(
        detail, code=failure.engine_code, reason=failure.reason, status=failure.status
    )


async def discard(storage: ObjectStore, keys: list[str]) -> None:
    for key in keys:
        try:
            await storage.delete(key)
        except Exception:  # retention is best effort; the run's outcome stands
            log.warning("could not delete staged input %s", key, exc_info=True)


async def hand_off(
    deps: SeedanceDeps, claim: Claim, video: VideoRequest, staged: list[str]
) -> tuple[list[str], list[str]]:
    """The URL Ark gets for each media item, and how each went (for the run's log).

    URL path: public URLs pass through; ``asset://`` and ``data:`` media become signed wfrun
    links. Real-person path: images and videos are registered as material first and Ark gets
    ``asset://<id>``; audio never is (§4.1). Inline (``data:``) media are staged in storage
    (their keys appended to ``staged``) and removed once the run ends."""
    urls: list[str] = []
    modes: list[str] = []
    for index, (kind, role, ref) in enumerate(video.media()):
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
                f"input asset {asset_id_of(ref)} is no longer stored", code="INPUT_ASSET_GONE"
            )
        return deps.links.url(key)
    assert ref.data is not None
    assert ref.mime_type is not None
    ext = _EXTENSIONS.get(ref.mime_type, "bin")
    key = f"runs/{claim.run['id']}/inputs/{index}.{ext}"
    await deps.storage.put(key, ref.data, content_type=ref.mime_type)
    staged.append(key)
    return deps.links.url(key)


async def _register(deps: SeedanceDeps, claim: Claim, url: str, kind: str, index: int) -> str:
    async with deps.db.transaction() as conn:
        own = await real_person.group_for(conn, claim.run["account_id"])
    group = own or deps.settings.real_person_group_id
    if deps.materials is None or group is None:
        raise EnginePermanent(
            "real-person material registration is not configured on this server",
            code="REAL_PERSON_REGISTRATION_UNAVAILABLE",
            reason="Real-person material registration is not available.",
            status=503,
        )
    name = f"wfrun-{claim.run['id']}-{index}"
    try:
        return await deps.materials.register(group_id=group, url=url, kind=kind, name=name)
    except MaterialRejected as exc:
        if "SensitiveContent" in exc.code:
            raise ark_failure(exc.code, exc.message, during="create") from exc
        raise EnginePermanent(
            exc.message,
            code="REAL_PERSON_REGISTRATION_FAILED",
            reason="The real-person material failed registration.",
            status=400,
        ) from exc
    except MaterialError as exc:
        if exc.transient:
            raise EngineTransient(exc.message) from exc
        raise EnginePermanent(
            exc.message,
            code="REAL_PERSON_REGISTRATION_UNAVAILABLE",
            reason="Real-person material registration is not available.",
            status=503,
        ) from exc


# ---- tracking ----------------------------------------------------------------------------


@dataclass
class Tracker:
    """Checks parked Seedance runs in batches and finishes those whose task ended."""

    deps: SeedanceDeps
    lease: timedelta = timedelta(minutes=5)
    concurrency: int = 8
    _finishing: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._finishing = asyncio.Semaphore(self.concurrency)

    async def tick(self) -> int:
        """Check one batch of due runs; returns how many were due."""
        items = await provider_runs.claim_tracked(
            self.deps.db, limit=self.deps.settings.tracker_batch, lease=self.lease
        )
        if not items:
            return 0
        try:
            views = await self.deps.ark.statuses([item.task_id for item in items])
        except ArkCallError as exc:
            log.warning("Ark status check failed (%s); checking again later", exc.message)
            retry = utcnow() + timedelta(seconds=self.deps.settings.poll_max_seconds)
            await provider_runs.check_later(self.deps.db, [(item, retry) for item in items])
            return len(items)
        unchanged = [i for i in items if self._still_waiting(i, views.get(i.task_id))]
        await provider_runs.check_later(
            self.deps.db, [(item, self.next_check(item)) for item in unchanged]
        )
        waiting = {id(item) for item in unchanged}
        rest = [item for item in items if id(item) not in waiting]
        await asyncio.gather(*(self._guarded(item, views.get(item.task_id)) for item in rest))
        return len(items)

    def _still_waiting(self, item: Tracked, view: TaskView | None) -> bool:
        """Nothing to do but look again later (the common case, batched)."""
        return (
            view is not None
            and view.status == item.run["provider_status"]
            and view.status in ("queued", "running")
            and item.run["cancel_requested_at"] is None
            and not self._timed_out(item)
        )

    async def _guarded(self, item: Tracked, view: TaskView | None) -> None:
        try:
            async with self._finishing:
                await self.handle(item, view)
        except execution.Fenced:
            log.info("run %s moved on elsewhere", item.run["id"])
        except Exception:
            log.exception("tracking run %s failed; its lease will lapse", item.run["id"])

    def next_check(self, item: Tracked) -> datetime:
        """Check young tasks often and old ones rarely: a tenth of the age, within bounds."""
        settings = self.deps.settings
        started = item.run["started_at"] or item.run["created_at"]
        age = (utcnow() - started).total_seconds()
        delay = min(settings.poll_max_seconds, max(settings.poll_min_seconds, age / 10))
        return utcnow() + timedelta(seconds=delay)

    async def handle(self, item: Tracked, view: TaskView | None) -> None:
        await self._handle(item, view)
        staged = _staged(item)
        if staged and await provider_runs.has_ended(self.deps.db, item):
            await discard(self.deps.storage, staged)

    async def _handle(self, item: Tracked, view: TaskView | None) -> None:
        if view is None:
            await self._fail(
                item,
                Failure(
                    "ENGINE_EXECUTION_FAILED",
                    "The provider's task failed.",
                    f"upstream task {item.task_id} no longer exists at Ark",
                ),
            )
            return
        if view.status == "succeeded":
            await self._succeed(item, view)
        elif view.status in ("failed", "expired"):
            code = view.error_code or ("Expired" if view.status == "expired" else "")
            failure = ark_failure(code, _task_error(item, view), during="task")
            await self._fail(item, engine_failure(failure))
        elif view.status == "cancelled":
            await self._cancelled(item, f"upstream task {item.task_id} was cancelled")
        elif item.run["cancel_requested_at"] is not None:
            await self._cancel(item, view)
        elif self._timed_out(item):
            await self._time_out(item)
        else:
            await provider_runs.observe(
                self.deps.db, item, view.status, next_check=self.next_check(item)
            )

    def _timed_out(self, item: Tracked) -> bool:
        started: datetime = item.run["started_at"] or item.run["created_at"]
        return utcnow() - started > timedelta(seconds=item.claim.spec.timeout_seconds)

    async def _cancel(self, item: Tracked, view: TaskView) -> None:
        if (item.run["provider_state"] or {}).get("cancel_refused"):
            await provider_runs.observe(
                self.deps.db, item, view.status, next_check=self.next_check(item)
            )
            return
        try:
            await self.deps.ark.cancel(item.task_id)
        except ArkRejected as exc:
            await provider_runs.remember(self.deps.db, item, cancel_refused=exc.message)
            note = (
                f"cancel requested, but Ark refused to cancel {view.status} task "
                f"{item.task_id} ({exc.message}); it will be settled by its result"
            )
            await provider_runs.observe(
                self.deps.db, item, view.status, next_check=self.next_check(item), note=note
            )
            return
        except ArkCallError as exc:
            log.warning("cancelling %s failed (%s); retrying", item.task_id, exc.message)
            await provider_runs.observe(
                self.deps.db, item, view.status, next_check=self.next_check(item)
            )
            return
        await self._cancelled(item, f"cancelled upstream task {item.task_id} while {view.status}")

    async def _cancelled(self, item: Tracked, note: str) -> None:
        await execution.cancel_consumed(
            self.deps.db,
            item.claim,
            execution_ms=0,
            detail=f"{note}; nothing was billed and the freeze was released",
        )

    async def _time_out(self, item: Tracked) -> None:
        try:
            await self.deps.ark.cancel(item.task_id)
        except ArkCallError as exc:
            log.info("could not cancel timed-out task %s: %s", item.task_id, exc.message)
        limit = item.claim.spec.timeout_seconds
        await self._fail(
            item,
            Failure(
                "ENGINE_TIMEOUT",
                "The run timed out.",
                f"upstream task {item.task_id} did not finish within {limit} s",
                status=504,
            ),
        )

    async def _fail(self, item: Tracked, failure: Failure) -> None:
        await execution.fail(self.deps.db, item.claim, failure, execution_ms=None)

    async def _succeed(self, item: Tracked, view: TaskView) -> None:
        video = request_of(item.claim)
        resolution = view.resolution or video.resolution
        tokens = view.completion_tokens
        if tokens is None:  # never seen; bill the most the request could cost
            log.warning("task %s reported no usage; billing the quoted tokens", item.task_id)
            tokens = seedance.quote_tokens(video)
        book = self.deps.prices.overridden(item.claim.spec.prices.token_prices)
        external = book.cost(video.model, resolution, tokens, with_video=video.with_video_input)
        if not view.video_url:
            await self._fail(
                item,
                Failure(
                    "ENGINE_OUTPUT_MISSING",
                    "The workflow did not produce a promised output.",
                    f"upstream task {item.task_id} succeeded without a video_url",
                ),
            )
            return
        try:
            outputs = await self._store_video(item, view.video_url)
        except ArkCallError as exc:
            if self._timed_out(item):  # Ark keeps results 24 h; give up within the run's time
                await self._fail(
                    item,
                    Failure(
                        "ENGINE_OUTPUT_MISSING",
                        "The workflow did not produce a promised output.",
                        f"the video of upstream task {item.task_id} could not be downloaded "
                        f"within the run's time limit: {exc.message}",
                    ),
                )
                return
            log.warning("download of %s failed (%s); retrying", item.task_id, exc.message)
            await provider_runs.observe(
                self.deps.db, item, "succeeded", next_check=self.next_check(item)
            )
            return
        started = item.run["started_at"] or item.run["created_at"]
        usage = {
            "provider": "ark",
            "task_id": item.task_id,
            "model": view.model or video.model,
            "completion_tokens": tokens,
            "total_tokens": tokens,
            "resolution": resolution,
            "ratio": view.ratio,
            "duration": view.duration,
            "with_video_input": video.with_video_input,
        }
        done = await execution.complete(
            self.deps.db,
            item.claim,
            outputs=outputs,
            execution_ms=int((utcnow() - started).total_seconds() * 1000),
            retention=self.deps.output_retention,
            external=external,
            usage=usage,
        )
        if not done:
            for entry in outputs.values():
                for stored in entry["files"]:
                    await self.deps.storage.delete(stored["storage_key"])

    async def _store_video(self, item: Tracked, url: str) -> dict[str, Any]:
        """§1.6: Ark deletes results after 24 h; copy the video into wfrun storage now."""
        node_id, _ = seedance.request_node(item.claim.spec.payload)
        outputs: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="wfrun-ark-") as folder:
            path = Path(folder) / "video.mp4"
            size = await self.deps.ark.download(
                url, path, max_bytes=self.deps.settings.max_output_bytes
            )
            for spec in item.claim.spec.outputs:
                files = []
                if spec.node_id == node_id and spec.type in ("video", "file"):
                    key = f"runs/{item.run['id']}/{item.claim.attempt}/{spec.key}/video.mp4"
                    await self.deps.storage.put_file(key, path, content_type="video/mp4")
                    files.append(
                        {
                            "storage_key": key,
                            "filename": "video.mp4",
                            "mime_type": "video/mp4",
                            "size_bytes": size,
                        }
                    )
                outputs[spec.key] = {
                    "type": spec.type,
                    "multiple": spec.multiple,
                    "files": files,
                    "text": [],
                }
        return outputs


def _staged(item: Tracked) -> list[str]:
    return list((item.run["provider_state"] or {}).get("staged_inputs") or [])


def _task_error(item: Tracked, view: TaskView) -> str:
    code = view.error_code or view.status
    message = view.error_message or ""
    return f"upstream task {item.task_id} {view.status}: {code} {message}".strip()
