"""The engine port: run a prepared ComfyUI-format graph, report progress, honour interrupts.

Engines never touch the database. Their errors split like httpx's transport/status errors:
:class:`EngineTransient` (worth retrying elsewhere or later) and :class:`EnginePermanent`
(fail the run and release its freeze).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from wfrun.domain.failures import Failure, FailureCode
from wfrun.errors import Category


class EngineError(Exception):
    """An engine failure: a catalogue code (the wire ``engine_code``), the node it concerns,
    and, rarely, a more precise reason or category than the code's. Never an HTTP status:
    only the API maps categories to statuses."""

    code = FailureCode.ENGINE_EXECUTION_FAILED

    def __init__(
        self,
        message: str,
        *,
        code: FailureCode | None = None,
        node_id: str | None = None,
        reason: str | None = None,
        category: Category | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.node_id = node_id
        self.reason = reason
        self.category = category

    def failure(self) -> Failure:
        """How the run this error ends reads."""
        return Failure(self.code, self.message, self.node_id, self.reason, self.category)


class EngineTransient(EngineError):
    code = FailureCode.ENGINE_UNAVAILABLE


class EngineUnreachable(EngineTransient):
    """The engine instance did not answer (connection refused, reset or timed out): it is
    restarting or unreachable, which is weather, not the run's failure. The run waits for an
    instance (no attempt used) within its time limit instead of being retried.

    Attributes:
        accepted: The instance had accepted the run's prompt before it went away: only that
            instance may still hold it, so the run waits for it (and re-attaches to the prompt
            by its engine prompt id) rather than moving to another instance.
    """

    def __init__(self, message: str, *, accepted: bool = False, **details: Any) -> None:
        super().__init__(message, **details)
        self.accepted = accepted


class EngineBusy(EngineTransient):
    """The engine refused for lack of capacity (e.g. a provider's 429): nothing was started,
    so waiting does not use up one of the run's attempts."""


class EnginePermanent(EngineError):
    code = FailureCode.ENGINE_EXECUTION_FAILED


class EngineInterrupted(Exception):
    """The run was interrupted on request; it stopped at a node boundary. ``finished`` holds
    what output nodes that ran before it produced (engines that can tell; a run stopped at
    its cost limit keeps them)."""

    def __init__(self, finished: Mapping[str, NodeResult] | None = None) -> None:
        super().__init__("interrupted")
        self.finished: Mapping[str, NodeResult] = finished or {}


@dataclass(frozen=True)
class OutputFile:
    filename: str
    data: bytes
    mime_type: str


@dataclass(frozen=True)
class NodeResult:
    """What one output node produced."""

    files: tuple[OutputFile, ...] = ()
    text: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSpec:
    """A run prepared for an engine: the bound graph and the media it references by name."""

    run_id: str
    attempt: int
    graph: Mapping[str, Any]
    media: Mapping[str, bytes] = field(default_factory=dict)
    target: str | None = None
    """Engine instance to run on (a ComfyUI server's base URL); None for in-process engines."""
    engine_prompt_id: str | None = None
    """The uuid the engine knows the run by (ComfyUI's ``prompt_id``): derived from the run
    alone, so every attempt re-attaches to the same prompt (``services.claims``)."""
    timeout_seconds: float = 600.0
    first_dispatch: bool = False
    """True when no earlier attempt of the run was ever handed to an engine, so no server can
    know ``engine_prompt_id`` yet: the engine submits at once instead of first looking for a
    prompt to re-attach to. False (the safe default) always looks."""


class ProgressSink(Protocol):
    async def node_started(self, node_id: str, class_type: str, index: int, total: int) -> None: ...

    async def node_finished(
        self, node_id: str, class_type: str, index: int, total: int
    ) -> None: ...


async def report_node_progress(
    sink: ProgressSink,
    node_id: str,
    class_type: str,
    index: int,
    total: int,
    value: float,
    maximum: float,
) -> None:
    """Tell a sink that can take it (``node_progress(...)``) how far the running node is:
    ``value`` of ``maximum`` (ComfyUI's ``progress`` message; the local engine's long nodes).
    Engines may report as often as they like; the sink decides what to keep (a worker writes
    at most a few times a second). ``index`` counts the nodes finished before this one."""
    hook = getattr(sink, "node_progress", None)
    if hook is not None and maximum > 0:
        await hook(node_id, class_type, index, total, min(max(value / maximum, 0.0), 1.0))


async def report_execution_time(sink: ProgressSink, milliseconds: int | None) -> None:
    """Tell a sink that can take it (``execution_time(ms)``) how long the engine itself says
    the run executed; billing then uses it instead of the worker's wall clock, which would
    include queueing on the instance and transfers."""
    hook = getattr(sink, "execution_time", None)
    if milliseconds is not None and hook is not None:
        await hook(milliseconds)


HAND_BACK = "wfrun: handed back"
"""The message a stopping worker cancels a run's task with (``task.cancel(HAND_BACK)``): the
run goes on elsewhere, so an engine leaves its remote work running for the next owner to
attach to, instead of withdrawing it as on any other cancellation."""


def handed_back(cancelled: BaseException) -> bool:
    """Whether this cancellation is a stopping worker's hand-back (:data:`HAND_BACK`)."""
    return HAND_BACK in cancelled.args


class Engine(Protocol):
    async def execute(
        self, spec: RunSpec, sink: ProgressSink, interrupt: threading.Event
    ) -> dict[str, NodeResult]:
        """Run ``spec`` to completion; returns results keyed by output node id. Cancelling the
        call stops it; remote work is withdrawn unless the cancel says :data:`HAND_BACK`.

        Raises:
            EnginePermanent | EngineTransient: the run failed.
            EngineInterrupted: ``interrupt`` was set and the engine stopped.
        """
        ...
