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


class EngineError(Exception):
    """An engine failure with a wire ``engine_code`` and the node it concerns, if any."""

    code = "ENGINE_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        node_id: str | None = None,
        reason: str | None = None,
        status: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.node_id = node_id
        self.reason = reason
        """The wire ``reason`` when the engine knows better than the code's default."""
        self.status = status


class EngineTransient(EngineError):
    code = "ENGINE_UNAVAILABLE"


class EngineBusy(EngineTransient):
    """The engine refused for lack of capacity (e.g. a provider's 429): nothing was started,
    so waiting does not use up one of the run's attempts."""


class EnginePermanent(EngineError):
    code = "ENGINE_EXECUTION_FAILED"


class EngineInterrupted(Exception):
    """The run was interrupted on request; it stopped at a node boundary."""


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
    """Canonical uuid the engine knows this attempt by, derived from (run, attempt)."""
    timeout_seconds: float = 600.0


class ProgressSink(Protocol):
    async def node_started(self, node_id: str, class_type: str, index: int, total: int) -> None: ...

    async def node_finished(
        self, node_id: str, class_type: str, index: int, total: int
    ) -> None: ...


async def report_execution_time(sink: ProgressSink, milliseconds: int | None) -> None:
    """Tell a sink that can take it (``execution_time(ms)``) how long the engine itself says
    the run executed; billing then uses it instead of the worker's wall clock, which would
    include queueing on the instance and transfers."""
    hook = getattr(sink, "execution_time", None)
    if milliseconds is not None and hook is not None:
        await hook(milliseconds)


class Engine(Protocol):
    async def execute(
        self, spec: RunSpec, sink: ProgressSink, interrupt: threading.Event
    ) -> dict[str, NodeResult]:
        """Run ``spec`` to completion; returns results keyed by output node id.

        Raises:
            EnginePermanent | EngineTransient: the run failed.
            EngineInterrupted: ``interrupt`` was set and the engine stopped.
        """
        ...
