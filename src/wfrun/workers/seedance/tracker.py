"""The tracker: checks parked Seedance runs in batches and finishes those whose task ended."""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from wfrun.clock import utcnow
from wfrun.domain import seedance
from wfrun.domain.failures import Failure, FailureCode
from wfrun.engines.seedance import wire
from wfrun.engines.seedance.ark import (
    ArkCallError,
    ArkRejected,
    TaskView,
)
from wfrun.services import claims, provider_runs, run_outcomes
from wfrun.services.provider_runs import Tracked
from wfrun.services.seedance_deps import SeedanceDeps
from wfrun.workers.seedance.common import (
    ark_failure,
    discard,
    request_of,
)

log = logging.getLogger(__name__)


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
            and view.status == item.run.provider_status
            and view.status in ("queued", "running")
            and (item.run.cancel_requested_at is None or _state(item, "cancel_refused"))
            and not self._overdue(item)
        )

    async def _guarded(self, item: Tracked, view: TaskView | None) -> None:
        try:
            async with self._finishing:
                await self.handle(item, view)
        except claims.Fenced:
            log.info("run %s moved on elsewhere", item.run.id)
        except Exception:
            log.exception("tracking run %s failed; its lease will lapse", item.run.id)

    def next_check(self, item: Tracked) -> datetime:
        """Check young tasks often and old ones rarely: a tenth of the age, within bounds."""
        settings = self.deps.settings
        started = item.run.started_at or item.run.created_at
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
                    FailureCode.ENGINE_EXECUTION_FAILED,
                    f"upstream task {item.task_id} no longer exists at Ark",
                    reason_override="The provider's task failed.",
                ),
            )
            return
        if view.status == "succeeded":
            await self._succeed(item, view)
        elif view.status in ("failed", "expired"):
            code = view.error_code or ("Expired" if view.status == "expired" else "")
            failure = ark_failure(code, _task_error(item, view), during="task")
            await self._fail(item, failure.failure())
        elif view.status == "cancelled":
            await self._cancelled(item, f"upstream task {item.task_id} was cancelled")
        elif item.run.cancel_requested_at is not None and not _state(item, "cancel_refused"):
            await self._cancel(item, view)
        elif self._overdue(item):
            await self._time_out(item, view)
        else:
            await provider_runs.observe(
                self.deps.db, item, view.status, next_check=self.next_check(item)
            )

    def _timed_out(self, item: Tracked) -> bool:
        started: datetime = item.run.started_at or item.run.created_at
        return utcnow() - started > timedelta(seconds=item.claim.spec.timeout_seconds)

    def _result_gone(self, item: Tracked) -> bool:
        """Ark keeps a result 24 h (§1.6): past the time limit plus that, stop retrying."""
        started: datetime = item.run.started_at or item.run.created_at
        limit = timedelta(seconds=item.claim.spec.timeout_seconds) + timedelta(days=1)
        return utcnow() - started > limit

    def _overdue(self, item: Tracked) -> bool:
        """Past the time limit and not yet known to be rendering beyond it."""
        return self._timed_out(item) and not _state(item, "overtime")

    async def _stop_upstream(self, item: Tracked) -> str | TaskView | None:
        """Cancel the task if it is still queued: ``stopped``; ``running`` when Ark can no
        longer cancel it; ``retry`` when Ark could not be asked; or the task's fresh state
        when it has just ended (never DELETE a finished task: that deletes its record)."""
        try:
            fresh = await self.deps.ark.get(item.task_id)
            if fresh is None or fresh.status in wire.ARK_TERMINAL:
                return fresh
            if fresh.status != "queued":
                return "running"
            await self.deps.ark.cancel(item.task_id)
        except ArkRejected:
            return "running"  # it started between the check and the DELETE
        except ArkCallError as exc:
            log.warning("stopping %s failed (%s); retrying", item.task_id, exc.message)
            return "retry"
        return "stopped"

    async def _stop(
        self,
        item: Tracked,
        view: TaskView,
        *,
        stopped: Callable[[], Awaitable[object]],
        flag: str,
        note: str,
    ) -> None:
        """Stop the upstream task for a cancel or the time limit: ``stopped`` when Ark
        cancelled it; when it is already rendering, record ``flag`` and ``note`` and keep
        tracking (it will be settled by its result); a task that just ended is handled."""
        outcome = await self._stop_upstream(item)
        if outcome is None or isinstance(outcome, TaskView):
            await self._handle(item, outcome)
        elif outcome == "stopped":
            await stopped()
        elif outcome == "running":
            await provider_runs.remember(self.deps.db, item, **{flag: True})
            await provider_runs.observe(
                self.deps.db, item, "running", next_check=self.next_check(item), note=note
            )
        else:  # Ark could not be asked: try again at the next check
            await provider_runs.observe(
                self.deps.db, item, view.status, next_check=self.next_check(item)
            )

    async def _cancel(self, item: Tracked, view: TaskView) -> None:
        await self._stop(
            item,
            view,
            stopped=lambda: self._cancelled(
                item, f"cancelled upstream task {item.task_id} while queued"
            ),
            flag="cancel_refused",
            note=f"cancel requested, but upstream task {item.task_id} is already rendering and "
            "Ark cannot cancel it; it will be settled by its result",
        )

    async def _cancelled(self, item: Tracked, note: str) -> None:
        await run_outcomes.cancel_consumed(
            self.deps.db,
            item.claim,
            execution_ms=0,
            detail=f"{note}; nothing was billed and the freeze was released",
        )

    async def _time_out(self, item: Tracked, view: TaskView) -> None:
        limit = item.claim.spec.timeout_seconds
        failure = Failure(
            FailureCode.ENGINE_TIMEOUT,
            f"upstream task {item.task_id} was still queued after {limit} s; it was "
            "cancelled and the freeze released",
        )
        await self._stop(
            item,
            view,
            stopped=lambda: self._fail(item, failure),
            flag="overtime",
            note=f"the run's time limit of {limit} s passed while Ark renders task "
            f"{item.task_id}, which it cannot cancel; it will be settled by its result "
            "(Ark expires it within the hour)",
        )

    async def _fail(self, item: Tracked, failure: Failure) -> None:
        await run_outcomes.fail(self.deps.db, item.claim, failure, execution_ms=None)

    async def _succeed(self, item: Tracked, view: TaskView) -> None:
        outputs = await self._copy_result(item, view)
        if outputs is None:
            return
        video = request_of(item.claim)
        tokens = view.completion_tokens
        if tokens is None:  # never seen; bill the most the request could cost
            log.warning("task %s reported no usage; billing the quoted tokens", item.task_id)
            tokens = seedance.quote_tokens(video)
        resolution = view.resolution or video.resolution
        book = self.deps.prices.overridden(item.claim.spec.prices.token_prices)
        started = item.run.started_at or item.run.created_at
        done = await run_outcomes.complete(
            self.deps.db,
            item.claim,
            outputs=outputs,
            execution_ms=int((utcnow() - started).total_seconds() * 1000),
            retention=self.deps.output_retention,
            external=book.cost(video.model, resolution, tokens, with_video=video.with_video_input),
            usage={
                "provider": "ark",
                "task_id": item.task_id,
                "model": view.model or video.model,
                "completion_tokens": tokens,
                "total_tokens": tokens,
                "resolution": resolution,
                "ratio": view.ratio,
                "duration": view.duration,
                "with_video_input": video.with_video_input,
            },
            # the platform fee as quoted at submit (provider time is not wfrun's compute)
            compute=item.run.quote_amount - item.run.quote_external,
        )
        if not done:
            for entry in outputs.values():
                for stored in entry["files"]:
                    await self.deps.storage.delete(stored["storage_key"])

    async def _copy_result(self, item: Tracked, view: TaskView) -> dict[str, Any] | None:
        """The task's video, copied into storage; None when the run was failed instead (no
        video, or one that cannot be had) or will be checked again (a transient error)."""
        if not view.video_url:
            await self._output_missing(item, "succeeded without a video_url")
            return None
        try:
            return await self._store_video(item, view.video_url)
        except ArkCallError as exc:
            if isinstance(exc, ArkRejected) or self._result_gone(item):
                await self._output_missing(item, f"has a video that cannot be downloaded: {exc}")
                return None
            log.warning("download of %s failed (%s); retrying", item.task_id, exc.message)
            await provider_runs.observe(
                self.deps.db, item, "succeeded", next_check=self.next_check(item)
            )
            return None

    async def _output_missing(self, item: Tracked, why: str) -> None:
        detail = f"upstream task {item.task_id} {why}"
        await self._fail(item, Failure(FailureCode.ENGINE_OUTPUT_MISSING, detail))

    async def _store_video(self, item: Tracked, url: str) -> dict[str, Any]:
        """§1.6: Ark deletes results after 24 h; copy the video into wfrun storage now."""
        node_id, _ = seedance.request_node(item.claim.spec.payload)
        outputs: dict[str, Any] = {}
        tag = secrets.token_hex(4)  # this tracker's copy: a losing racer deletes only its own
        with tempfile.TemporaryDirectory(prefix="wfrun-ark-") as folder:
            path = Path(folder) / "video.mp4"
            size = await self.deps.ark.download(
                url, path, max_bytes=self.deps.settings.max_output_bytes
            )
            for spec in item.claim.spec.outputs:
                files = []
                if spec.node_id == node_id and spec.type in ("video", "file"):
                    key = f"runs/{item.run.id}/{item.claim.attempt}/{tag}/{spec.key}/video.mp4"
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


def _state(item: Tracked, name: str) -> Any:
    return (item.run.provider_state or {}).get(name)


def _staged(item: Tracked) -> list[str]:
    return list((item.run.provider_state or {}).get("staged_inputs") or [])


def _task_error(item: Tracked, view: TaskView) -> str:
    code = view.error_code or view.status
    message = view.error_message or ""
    return f"upstream task {item.task_id} {view.status}: {code} {message}".strip()
