"""Volcengine Ark's content-generation tasks through the official SDK (``AsyncArk``).

The client is built with ``max_retries=0``: the SDK's own retries would re-send ``create``
after a lost response and make a second billable task (seedance-ark.md §3.3). Instead every
failure is classified here: :class:`ArkRejected` (Ark answered; nothing was created),
:class:`ArkBusy` (rate limited; nothing was created), :class:`ArkUnknown` (no answer, or a
5xx: the task may exist; the caller reconciles with :meth:`ArkGateway.find_created`).
Reads (list, get) are safe to send again, so one whose connection dropped before any answer —
a server closing an idle keep-alive connection just as it is reused — is sent once more at
once on a new connection (:meth:`ArkGateway._read`); a timeout or an answered error is not.

The SDK is the ``seedance`` extra (``pip install 'wfrun[seedance]'``), imported when an
:class:`ArkGateway` is built (Seedance is configured), never before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from wfrun.errors import MissingExtra

log = logging.getLogger(__name__)
LIST_PAGE = 500  # §1.6: page_size in [1, 500]
MAX_RECONCILE_PAGES = 20
T = TypeVar("T")


class ArkCallError(Exception):
    def __init__(self, message: str, *, code: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


class ArkRejected(ArkCallError):
    """Ark answered 4xx (not 429): the request is wrong or refused; nothing was created."""


class ArkBusy(ArkCallError):
    """Ark answered 429: back off; nothing was created."""


class ArkUnknown(ArkCallError):
    """No usable answer (connection lost, timeout, 5xx): a create may or may not exist."""


@dataclass(frozen=True)
class TaskView:
    """The fields of a task wfrun acts on (§1.6)."""

    id: str
    status: str
    model: str = ""
    error_code: str | None = None
    error_message: str | None = None
    video_url: str | None = None
    completion_tokens: int | None = None
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    created_at: int | None = None
    safety_identifier: str | None = None
    execution_expires_after: int | None = None

    @classmethod
    def of(cls, task: Any) -> TaskView:
        error = getattr(task, "error", None)
        content = getattr(task, "content", None)
        usage = getattr(task, "usage", None)
        return cls(
            id=task.id,
            status=task.status,
            model=getattr(task, "model", "") or "",
            error_code=getattr(error, "code", None),
            error_message=getattr(error, "message", None),
            video_url=getattr(content, "video_url", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            resolution=getattr(task, "resolution", None),
            ratio=getattr(task, "ratio", None),
            duration=getattr(task, "duration", None),
            created_at=getattr(task, "created_at", None),
            safety_identifier=getattr(task, "safety_identifier", None),
            execution_expires_after=getattr(task, "execution_expires_after", None),
        )


def require_sdk() -> None:
    """Raises:
    MissingExtra: the Ark SDK (the ``seedance`` extra) is not installed."""
    try:
        import volcenginesdkarkruntime  # type: ignore[import-untyped]  # noqa: F401
        import volcenginesdkcore  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        raise MissingExtra(
            "the Seedance engine (seedance.ark_api_key is set)", "seedance"
        ) from None


def _classify(exc: Exception) -> ArkCallError:
    from volcenginesdkarkruntime._exceptions import (  # type: ignore[import-untyped]
        ArkAPIConnectionError,
        ArkAPIError,
        ArkAPIStatusError,
    )

    if isinstance(exc, ArkAPIStatusError):
        status = exc.status_code
        code = exc.code or ""
        message = f"Ark answered {status} {code}: {exc.message}".strip()
        if status == 429:
            return ArkBusy(message, code=code, status=status)
        if status >= 500 or status in (408, 409):
            return ArkUnknown(message, code=code, status=status)
        return ArkRejected(message, code=code, status=status)
    if isinstance(exc, ArkAPIConnectionError):
        return ArkUnknown(f"no answer from Ark: {exc.message}")
    if isinstance(exc, ArkAPIError):
        return ArkUnknown(f"unusable answer from Ark: {exc.message}")
    return ArkUnknown(f"Ark call failed: {exc!r}")


def _dropped(exc: Exception) -> bool:
    """The connection failed before any answer, and not by the read's own time limit."""
    from volcenginesdkarkruntime._exceptions import (
        ArkAPIConnectionError,
        ArkAPITimeoutError,
    )

    return isinstance(exc, ArkAPIConnectionError) and not isinstance(exc, ArkAPITimeoutError)


class ArkGateway:
    """One per worker process; safe to share between coroutines (``AsyncArk``)."""

    def __init__(self, *, base_url: str, api_key: str, timeout: float) -> None:
        require_sdk()
        from volcenginesdkarkruntime import AsyncArk

        self._client = AsyncArk(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)
        self._files = httpx.AsyncClient(timeout=httpx.Timeout(timeout * 4, connect=timeout))

    async def aclose(self) -> None:
        await self._client.close()
        await self._files.aclose()

    async def create(self, arguments: dict[str, Any]) -> str:
        """Create a task; returns its id. Raises :class:`ArkCallError` subclasses."""
        try:
            created = await self._client.content_generation.tasks.create(**arguments)
        except Exception as exc:  # the SDK's errors, classified
            raise _classify(exc) from exc
        return str(created.id)

    async def find_created(
        self,
        *,
        model: str,
        safety_identifier: str,
        expires_after: int,
        since: int,
        exclude: set[str],
    ) -> str | None:
        """The id of a task a lost create made: same model, user and expiry fingerprint,
        created at or after ``since`` (Unix s), and not already another run's."""
        matches: list[TaskView] = []
        for page_num in range(1, MAX_RECONCILE_PAGES + 1):
            try:
                page = await self._read(
                    self._client.content_generation.tasks.list,
                    page_num=page_num,
                    page_size=LIST_PAGE,
                    model=model,
                )
            except Exception as exc:
                raise _classify(exc) from exc
            items = [TaskView.of(item) for item in page.items or []]
            matches += [
                t
                for t in items
                if t.safety_identifier == safety_identifier
                and t.execution_expires_after == expires_after
                and (t.created_at or 0) >= since
                and t.id not in exclude
            ]
            if matches or len(items) < LIST_PAGE:  # Ark does not document the list's order
                break
        matches.sort(key=lambda t: (t.created_at or 0, t.id))
        return matches[0].id if matches else None

    async def ping(self) -> None:
        """One cheap authenticated call (the first page of one task)."""
        try:
            await self._read(self._client.content_generation.tasks.list, page_num=1, page_size=1)
        except Exception as exc:
            raise _classify(exc) from exc

    async def statuses(self, task_ids: Sequence[str]) -> dict[str, TaskView]:
        """Current state of many tasks in one list call per 500 (§1.6 ``filter.task_ids``);
        ids the list does not return are looked up one by one (a 404 leaves them out)."""
        found: dict[str, TaskView] = {}
        for start in range(0, len(task_ids), LIST_PAGE):
            chunk = list(task_ids[start : start + LIST_PAGE])
            try:
                page = await self._read(
                    self._client.content_generation.tasks.list,
                    page_num=1,
                    page_size=len(chunk),
                    task_ids=chunk,
                )
            except Exception as exc:
                error = _classify(exc)
                if not isinstance(error, ArkRejected):
                    raise error from exc
                log.warning("batched status check refused (%s); asking one by one", error)
                continue  # the loop below looks each task up on its own
            found.update({item.id: TaskView.of(item) for item in page.items or []})
        for task_id in [t for t in task_ids if t not in found]:
            view = await self.get(task_id)
            if view is not None:
                found[task_id] = view
        return found

    async def get(self, task_id: str) -> TaskView | None:
        """One task, or None when Ark no longer knows it (404)."""
        try:
            task = await self._read(self._client.content_generation.tasks.get, task_id=task_id)
        except Exception as exc:
            error = _classify(exc)
            if isinstance(error, ArkRejected) and error.status == 404:
                return None
            raise error from exc
        return TaskView.of(task)

    @staticmethod
    async def _read(call: Callable[..., Awaitable[T]], **arguments: Any) -> T:
        """A read, sent once more at once when its connection dropped with no answer."""
        try:
            return await call(**arguments)
        except Exception as exc:
            if not _dropped(exc):
                raise
            log.info("Ark read lost its connection (%s); sending it again", exc)
        return await call(**arguments)

    async def cancel(self, task_id: str) -> None:
        """§1.7: DELETE cancels a queued task (a running one is refused: ArkRejected)."""
        try:
            await self._client.content_generation.tasks.delete(task_id)
        except Exception as exc:
            raise _classify(exc) from exc

    async def download(self, url: str, target: Path, *, max_bytes: int) -> int:
        """Stream a result file (a presigned TOS URL Ark returned) into ``target``."""
        size = 0
        try:
            async with self._files.stream("GET", url) as response:
                response.raise_for_status()
                with target.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise ArkRejected(f"the result is larger than {max_bytes} bytes")
                        out.write(chunk)
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            kind = ArkRejected if 400 <= status < 500 and status != 429 else ArkUnknown
            raise kind(f"downloading the result failed: HTTP {status}", status=status) from exc
        except httpx.HTTPError as exc:
            raise ArkUnknown(f"downloading the result failed: {exc!r}") from exc
        return size
