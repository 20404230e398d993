"""Waiting for one prompt: events, watchdog polling, cancellation and the time limit.

Protocol facts relied on (ComfyUI 0.3.64):

- ``executing`` with ``node: null`` comes last, after ``execution_success`` /
  ``execution_error`` / ``execution_interrupted`` and after the history entry is written;
  ``execution_success`` itself races history. A prompt submitted on this socket, whose
  events all came on it, is concluded from them (``record``); otherwise history is read on
  ``executing(null)`` (retried briefly all the same).
- ``execution_error`` and ``execution_interrupted`` carry everything needed to report
  the outcome, so they end the wait at once.
- Events only reach the socket whose clientId the prompt was submitted with; once that
  socket is gone (or the prompt was submitted by an earlier worker) only polling
  ``/history`` + ``/queue`` can tell the outcome. Polling also catches a server that
  restarted (queue and history are lost: the prompt is in neither).
- Cancel: a *pending* prompt is removed with ``POST /queue {"delete"}`` (no history entry
  is ever written); a *running* one is stopped with ``POST /interrupt {"prompt_id"}``,
  confirmed by ``execution_interrupted`` or a history entry ending with it. Both POSTs
  answer 200 with an empty body whatever happened, hence the confirmation loop.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass

from wfrun.domain.failures import FailureCode
from wfrun.engines.base import (
    EngineInterrupted,
    EnginePermanent,
    EngineTransient,
    EngineUnreachable,
)
from wfrun.engines.comfyui.channel import Inbox, SocketLost
from wfrun.engines.comfyui.client import ComfyRequestError
from wfrun.engines.comfyui.events import (
    ComfyEvent,
    ComfyFailure,
    HistoryOutcome,
    describe_execution_error,
    describe_interruption,
    parse_history_entry,
)
from wfrun.engines.comfyui.outputs import OutputFiles
from wfrun.engines.comfyui.progress import ProgressTracker
from wfrun.engines.comfyui.record import EventRecord
from wfrun.engines.comfyui.session import InstanceSession

TIMEOUT_CODE = FailureCode.ENGINE_TIMEOUT


@dataclass(frozen=True)
class Submission:
    """How the prompt got onto the server.

    Attributes:
        prompt_id: The prompt.
        generation: Socket generation it was submitted under; None when attached to a
            prompt someone else submitted (its events go to another clientId).
        replaced_start: When the prompt id was reused after deleting an older (interrupted)
            run's history, that run's ``execution_start`` timestamp: frames of the old run
            may still be in flight, so events are ignored until an ``execution_start``
            with another timestamp (the polling watchdog covers the rest).
    """

    prompt_id: str
    generation: int | None
    replaced_start: int | None = None
    replaced: bool = False


def permanent(failure: ComfyFailure) -> EnginePermanent:
    """The engine error for a failure."""
    return EnginePermanent(failure.message, code=failure.code, node_id=failure.node_id)


class PromptWatch:
    """Waits for one prompt's outcome; reports progress; honours interrupt and deadline."""

    def __init__(
        self,
        session: InstanceSession,
        submission: Submission,
        inbox: Inbox,
        tracker: ProgressTracker,
        interrupt: threading.Event,
        deadline: float,
        files: OutputFiles | None = None,
    ) -> None:
        """Creates the watch (``deadline`` is on ``time.monotonic()``); ``files`` hears
        every event of the prompt, to start fetching its outputs early."""
        self._session = session
        self._settings = session.settings
        self._prompt_id = submission.prompt_id
        self._generation = submission.generation
        self._inbox = inbox
        self._tracker = tracker
        self._interrupt = interrupt
        self._deadline = deadline
        self._orphaned = submission.generation is None
        self._next_poll = time.monotonic() + (0.0 if self._orphaned else self._interval())
        self._unreachable_since: float | None = None
        self._last_interrupt_post = -math.inf
        self._stale = submission.replaced
        self._stale_start = submission.replaced_start
        self._files = files
        self._record = EventRecord()
        self._replaced = submission.replaced

    async def wait(self) -> HistoryOutcome:
        """Waits until the prompt succeeded.

        Returns:
            The successful outcome (outputs not fetched yet).

        Raises:
            EnginePermanent: validation/execution failure, or ``ENGINE_TIMEOUT``.
            EngineTransient: the server lost the prompt, stayed unreachable, or interrupted
                it without being asked.
            EngineInterrupted: ``interrupt`` was set and the prompt was stopped or removed.
        """
        while True:
            if self._interrupt.is_set():
                return await self._cancel()
            await self._check_deadline()
            outcome = await self._step()
            if outcome is not None:
                return outcome

    async def _step(self) -> HistoryOutcome | None:
        item = await self._next_item(min(self._settings.tick, self._remaining()))
        if item is not None:
            outcome = await self._on_item(item)
            if outcome is not None:
                return outcome
        if not self._orphaned and self._session.channel.generation != self._generation:
            self._orphan()
        if time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + self._interval()
            return await self._poll()
        return None

    async def _next_item(self, timeout: float) -> ComfyEvent | SocketLost | None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that lands
        # in the loop turn its awaitable completes in, and the cancelled run went on watching
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                return await self._inbox.get()
        except TimeoutError:
            return None

    async def _on_item(self, item: ComfyEvent | SocketLost) -> HistoryOutcome | None:
        if isinstance(item, SocketLost):
            if item.generation == self._generation:
                self._orphan()
            return None
        if self._stale:
            if item.type != "execution_start" or item.data.get("timestamp") == self._stale_start:
                return None
            self._stale = False
        if self._files is not None:
            self._files.on_event(item)
        self._record.add(item)
        await self._tracker.on_event(item)
        if item.type == "execution_error":
            raise permanent(describe_execution_error(item.data))
        if item.type == "execution_interrupted":
            raise self._interrupted(HistoryOutcome("interrupted", detail=item.data))
        if item.is_prompt_done:
            told = self._record.outcome() if self._watched_throughout() else None
            return await (self._final_history() if told is None else self._conclude(told))
        return None

    def _watched_throughout(self) -> bool:
        """Every event of the prompt came on the socket it was submitted under (a prompt
        attached to, re-queued under a reused id, or whose socket was lost: not)."""
        current = self._session.channel.generation == self._generation
        return current and not self._orphaned and not self._replaced

    async def _final_history(self) -> HistoryOutcome | None:
        """Reads history after ``executing(null)``; leaves it to the watchdog if it fails."""
        end = time.monotonic() + self._settings.history_retry
        delay = 0.02
        while True:
            try:
                entry = await self._session.client.history(self._prompt_id)
            except ComfyRequestError:
                entry = None
            if entry is not None:
                return await self._conclude(parse_history_entry(entry))
            if time.monotonic() + delay > end:
                self._next_poll = time.monotonic()
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _poll(self) -> HistoryOutcome | None:
        """Watchdog: is the prompt done, still queued, or forgotten by the server?"""
        try:
            location = await self._session.locate(self._prompt_id)
        except ComfyRequestError as exc:
            self._note_unreachable(exc)
            return None
        self._unreachable_since = None
        if location.entry is not None:
            return await self._conclude(parse_history_entry(location.entry))
        if location.queued:
            return None
        raise EngineTransient(
            f"ComfyUI at {self._session.base_url} lost the prompt {self._prompt_id}: it is "
            "neither queued nor in /history (the instance restarted or it was deleted)"
        )

    def _note_unreachable(self, exc: ComfyRequestError) -> None:
        now = time.monotonic()
        if self._unreachable_since is None:
            self._unreachable_since = now
        grace = self._settings.unreachable_grace
        if now - self._unreachable_since >= grace:
            raise EngineUnreachable(
                f"ComfyUI at {self._session.base_url} stayed unreachable for {grace:g} s while "
                f"running prompt {self._prompt_id}: {exc.message}",
                accepted=True,
            ) from exc
        self._next_poll = now + self._settings.orphan_poll_interval

    async def _conclude(self, outcome: HistoryOutcome) -> HistoryOutcome:
        if outcome.status == "success":
            await self._tracker.complete()
            return outcome
        if outcome.status == "interrupted":
            raise self._interrupted(outcome)
        raise permanent(outcome.failure())

    def _interrupted(self, outcome: HistoryOutcome) -> Exception:
        if self._interrupt.is_set():
            return EngineInterrupted()
        return EngineTransient(
            f"ComfyUI at {self._session.base_url} interrupted prompt {self._prompt_id} "
            f"({describe_interruption(outcome.detail)}) without wfrun asking"
        )

    async def _cancel(self) -> HistoryOutcome:
        """Removes or interrupts the prompt and confirms it (or gives up after a while)."""
        end = time.monotonic() + self._settings.cancel_timeout
        while time.monotonic() < end:
            try:
                outcome = await self._cancel_step()
            except ComfyRequestError:
                outcome = None
            if outcome is not None:
                return outcome
            item = await self._next_item(0.1)
            if item is not None:
                outcome = await self._on_item(item)
                if outcome is not None:
                    return outcome
        raise EngineInterrupted()

    async def _cancel_step(self) -> HistoryOutcome | None:
        client = self._session.client
        entry = await client.history(self._prompt_id)
        if entry is None:
            state = await client.queue()
            if self._prompt_id in state.pending:
                await client.delete_pending(self._prompt_id)
                return None
            if self._prompt_id in state.running:
                await self._post_interrupt()
                return None
            entry = await client.history(self._prompt_id)
        if entry is None:
            raise EngineInterrupted()  # removed while pending: it never gets a history entry
        return await self._conclude(parse_history_entry(entry))

    async def _post_interrupt(self) -> None:
        if time.monotonic() - self._last_interrupt_post >= 0.5:
            self._last_interrupt_post = time.monotonic()
            await self._session.client.interrupt(self._prompt_id)

    async def _check_deadline(self) -> None:
        if self._remaining() > 0:
            return
        await self._session.withdraw(self._prompt_id)
        raise EnginePermanent(
            f"prompt {self._prompt_id} did not finish on ComfyUI at {self._session.base_url} "
            "within the run's time limit; it was withdrawn",
            code=TIMEOUT_CODE,
        )

    def _remaining(self) -> float:
        return self._deadline - time.monotonic()

    def _orphan(self) -> None:
        """No more events can arrive for this prompt: poll instead, starting now."""
        self._orphaned = True
        self._next_poll = time.monotonic()

    def _interval(self) -> float:
        if self._orphaned:
            return self._settings.orphan_poll_interval
        return self._settings.poll_interval
