"""The ComfyUI engine: runs a prepared graph on the ComfyUI server named by ``spec.target``.

Protocol facts relied on (ComfyUI 0.3.64; details in the sibling modules):

- The client picks the ``prompt_id`` (a canonical lowercase uuid; newer servers reject
  anything else). wfrun derives it from the run, the same for every attempt, so a
  re-dispatched attempt first looks the id up in ``/history`` and ``/queue`` and *attaches*
  to the prompt its predecessor submitted instead of queueing it twice. A first dispatch
  (``RunSpec.first_dispatch``) skips the three lookups: no server can know the id yet (and
  0.3.64 would queue a duplicate id again rather than refuse it, so the lookup cannot be
  replaced by "submit and see").
- Media go in with ``POST /upload/image`` before the prompt; the server may store them
  under another name (and in a sub-folder), which LoadImage must then be given.
- Outputs are read from ``history[id].outputs[node]``: files (``images`` and the like)
  fetched with ``GET /view``, and ``text``.
- A history entry that ended *interrupted* is not a result: a re-dispatch deletes it
  (``POST /history {"delete"}``) and queues the prompt again under the same id.
"""

from __future__ import annotations

import asyncio
import mimetypes
import threading
import time
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from wfrun.domain.failures import FailureCode
from wfrun.engines.base import (
    EngineInterrupted,
    EnginePermanent,
    EngineTransient,
    NodeResult,
    OutputFile,
    ProgressSink,
    RunSpec,
    handed_back,
    report_execution_time,
)
from wfrun.engines.comfyui.channel import Inbox
from wfrun.engines.comfyui.client import ComfyProtocolError, ComfyRequestError, PromptRejected
from wfrun.engines.comfyui.events import (
    FileRef,
    HistoryOutcome,
    UiOutput,
    executed_ms,
    parse_history_entry,
    start_timestamp,
)
from wfrun.engines.comfyui.graph import (
    UPLOAD_SUBFOLDER,
    nodes_to_run,
    rewrite_names,
    sort_key,
    upload_name,
)
from wfrun.engines.comfyui.outputs import OutputFiles
from wfrun.engines.comfyui.progress import ProgressTracker
from wfrun.engines.comfyui.session import ComfyUISettings, InstanceSession
from wfrun.engines.comfyui.watch import PromptWatch, Submission

T = TypeVar("T")
_UPLOAD_REFUSED = {413: FailureCode.MEDIA_TOO_LARGE}


class ComfyUIEngine:
    """Implements the ``Engine`` port on remote ComfyUI servers.

    One instance keeps, per server, one HTTP client and one long-lived WebSocket whose
    clientId is ``<client_id_prefix>-<random id of this instance>``; every run on that
    server shares them. An instance must be used from a single event loop.
    """

    def __init__(self, client_id_prefix: str, *, settings: ComfyUISettings | None = None):
        """Creates the engine; nothing connects until the first run on a server.

        Args:
            client_id_prefix: Prefix of the WebSocket clientId (e.g. the worker's name).
            settings: Timings; the defaults suit CPU servers with ~0.5 s stalls.
        """
        self.client_id = f"{client_id_prefix}-{uuid.uuid4().hex[:12]}"
        self._settings = settings or ComfyUISettings()
        self._sessions: dict[str, InstanceSession] = {}

    async def execute(
        self, spec: RunSpec, sink: ProgressSink, interrupt: threading.Event
    ) -> dict[str, NodeResult]:
        """Runs ``spec.graph`` on ``spec.target``; returns results by output node id.

        Raises:
            EnginePermanent: ``ENGINE_VALIDATION_FAILED`` (400 or dropped outputs),
                ``ENGINE_EXECUTION_FAILED`` (``execution_error``), ``ENGINE_TIMEOUT``.
            EngineTransient: the server is unreachable, or lost the prompt.
            EngineInterrupted: ``interrupt`` was set; the prompt was removed or stopped.
        """
        if not spec.target:
            raise EnginePermanent("the ComfyUI engine needs RunSpec.target (a server URL)")
        prompt_id = spec.engine_prompt_id or str(uuid.uuid4())
        deadline = time.monotonic() + spec.timeout_seconds
        session = self._session(spec.target)
        inbox = session.channel.subscribe(prompt_id)
        try:
            return await self._run(session, spec, prompt_id, inbox, sink, interrupt, deadline)
        except asyncio.CancelledError as cancelled:
            if not handed_back(cancelled):  # a hand-back leaves it for the next owner
                session.spawn(session.withdraw(prompt_id))
            raise
        finally:
            session.channel.unsubscribe(prompt_id, inbox)

    async def aclose(self) -> None:
        """Closes every socket and HTTP client."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.aclose()

    def _session(self, target: str) -> InstanceSession:
        key = target.rstrip("/")
        session = self._sessions.get(key)
        if session is None:
            session = InstanceSession(key, self.client_id, self._settings)
            self._sessions[key] = session
        return session

    async def _run(
        self,
        session: InstanceSession,
        spec: RunSpec,
        prompt_id: str,
        inbox: Inbox,
        sink: ProgressSink,
        interrupt: threading.Event,
        deadline: float,
    ) -> dict[str, NodeResult]:
        if interrupt.is_set():
            raise EngineInterrupted()
        object_info = await session.object_info()
        submission, graph = await self._attach_or_submit(session, spec, prompt_id, interrupt)
        tracker = ProgressTracker(graph, nodes_to_run(graph, object_info), sink)
        files = OutputFiles(session)  # downloads start with the ``executed`` events
        try:
            watch = PromptWatch(session, submission, inbox, tracker, interrupt, deadline, files)
            return await _results(session, prompt_id, watch, sink, files)
        finally:
            files.close()

    async def _attach_or_submit(
        self, session: InstanceSession, spec: RunSpec, prompt_id: str, interrupt: threading.Event
    ) -> tuple[Submission, Mapping[str, Any]]:
        """Attaches to a prompt the server already knows under this id, else submits it."""
        if spec.first_dispatch:
            return await self._submit(session, spec, prompt_id, interrupt)
        location = await session.locate(prompt_id)
        if location.queued:
            return Submission(prompt_id, None), spec.graph
        if location.entry is None:
            return await self._submit(session, spec, prompt_id, interrupt)
        if parse_history_entry(location.entry).status != "interrupted":
            return Submission(prompt_id, None), spec.graph
        await session.client.delete_history(prompt_id)
        submission, graph = await self._submit(session, spec, prompt_id, interrupt)
        stale = start_timestamp(location.entry)
        return replace(submission, replaced=True, replaced_start=stale), graph

    async def _submit(
        self, session: InstanceSession, spec: RunSpec, prompt_id: str, interrupt: threading.Event
    ) -> tuple[Submission, Mapping[str, Any]]:
        await session.channel.ensure_connected()
        graph = await self._upload_media(session, spec)
        if interrupt.is_set():
            raise EngineInterrupted()
        generation, client_id = session.channel.generation, session.channel.client_id
        try:
            await session.client.queue_prompt(graph, prompt_id=prompt_id, client_id=client_id)
        except PromptRejected as exc:
            if exc.accepted:
                await session.withdraw(prompt_id)
            raise
        except ComfyRequestError:
            if not await _accepted_anyway(session, prompt_id):
                raise
        return Submission(prompt_id, generation), graph

    async def _upload_media(self, session: InstanceSession, spec: RunSpec) -> dict[str, Any]:
        renames: dict[str, str] = {}
        for name, data in spec.media.items():
            try:
                renames[name] = await session.client.upload_image(
                    upload_name(name, data), data, subfolder=UPLOAD_SUBFOLDER, overwrite=True
                )
            except ComfyProtocolError as exc:
                if exc.status is None or not 400 <= exc.status < 500:
                    raise
                raise EnginePermanent(
                    f"ComfyUI at {session.base_url} refused the upload of {name!r}: {exc.message}",
                    code=_UPLOAD_REFUSED.get(exc.status, FailureCode.ENGINE_EXECUTION_FAILED),
                ) from exc
        return rewrite_names(spec.graph, renames)


async def _results(
    session: InstanceSession,
    prompt_id: str,
    watch: PromptWatch,
    sink: ProgressSink,
    files: OutputFiles,
) -> dict[str, NodeResult]:
    """Waits for the prompt and collects what it produced (cancelled: what it finished)."""
    try:
        outcome = await watch.wait()
    except EngineInterrupted:  # a cancel is charged the time the prompt executed
        executed, entry = await _interrupted(session, prompt_id)
        await report_execution_time(sink, executed)
        raise EngineInterrupted(await _finished(session, prompt_id, entry, files)) from None
    await report_execution_time(sink, outcome.duration_ms)
    return await _collect(session, prompt_id, outcome, files)


async def _finished(
    session: InstanceSession, prompt_id: str, entry: Mapping[str, Any] | None, files: OutputFiles
) -> dict[str, NodeResult]:
    """What the output nodes an interrupted prompt finished produced (its history keeps
    them); none when the instance cannot give them: the interrupt stands either way."""
    if entry is None:
        return {}
    try:
        return await _collect(session, prompt_id, parse_history_entry(entry), files)
    except (ComfyRequestError, ComfyProtocolError):
        return {}


async def _collect(
    session: InstanceSession, prompt_id: str, outcome: HistoryOutcome, files: OutputFiles
) -> dict[str, NodeResult]:
    """The results of the output nodes the history lists, their files fetched at once (or
    taken from the downloads their ``executed`` events started: ``outputs``)."""
    nodes = sorted(outcome.outputs, key=sort_key)
    fetching = (_node_result(session, prompt_id, outcome.outputs[n], files) for n in nodes)
    return dict(zip(nodes, await _all(fetching), strict=True))


async def _node_result(
    session: InstanceSession, prompt_id: str, ui: UiOutput, files: OutputFiles
) -> NodeResult:
    fetched = await _all(_fetch(session, prompt_id, ref, files) for ref in ui.files)
    return NodeResult(
        tuple(
            OutputFile(ref.filename, data, _mime(ref.filename))
            for ref, data in zip(ui.files, fetched, strict=True)
        ),
        ui.text,
    )


async def _all(coroutines: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Each result, in order; the first failure cancels the others (no download goes on for
    an attempt that has failed) and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def _mime(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


async def _fetch(
    session: InstanceSession, prompt_id: str, ref: FileRef, files: OutputFiles
) -> bytes:
    """``/view`` of one output; a missing file makes the finished prompt useless, so its
    history entry is dropped and the run fails as transient (a retry runs it again)."""
    try:
        return await files.fetch(ref)
    except ComfyProtocolError as exc:
        if exc.status != 404:
            raise
        await session.client.delete_history(prompt_id)
        raise EngineTransient(
            f"output {ref.filename!r} of prompt {prompt_id} is gone from ComfyUI at "
            f"{session.base_url}; its history entry was dropped so a retry runs it again"
        ) from exc


async def _interrupted(
    session: InstanceSession, prompt_id: str
) -> tuple[int | None, Mapping[str, Any] | None]:
    """How long a cancelled prompt executed, on the instance's clock (``execution_start`` →
    ``execution_interrupted`` in its history), and that history entry: 0 when it never
    started (a prompt removed while pending never gets an entry), None when the instance
    cannot tell. An interrupted prompt stays in ``/queue`` until its entry is written, so
    that is waited for briefly."""
    end = time.monotonic() + session.settings.history_retry
    while True:
        try:
            location = await session.locate(prompt_id)
        except ComfyRequestError:
            return None, None
        if location.entry is not None:
            return executed_ms(location.entry) or 0, location.entry
        if not location.queued:
            return 0, None
        if time.monotonic() > end:
            return None, None
        await asyncio.sleep(0.05)


async def _accepted_anyway(session: InstanceSession, prompt_id: str) -> bool:
    """After a failed ``POST /prompt`` (timeout, reset): did the server queue it anyway?"""
    try:
        return (await session.locate(prompt_id)).known
    except ComfyRequestError:
        return False
