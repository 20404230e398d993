"""The built-in CPU engine: executes ComfyUI API-format graphs in-process (see engines/local).

It measures its own execution time (its graph, start to end, however the run ends) and
reports it to the sink: a run is charged that, not the time the worker spent fetching its media
before the engine started.
"""

from __future__ import annotations

import threading
import time

from wfrun.domain.failures import FailureCode
from wfrun.engines.base import (
    EngineInterrupted,
    EnginePermanent,
    NodeResult,
    OutputFile,
    ProgressSink,
    RunSpec,
    report_execution_time,
    report_node_progress,
)
from wfrun.engines.local.executor import (
    GraphInvalid,
    Interrupted,
    NodeFailed,
    NodeOutput,
    execute_graph,
)


class LocalEngine:
    """Runs graphs with the local node set; node work happens off the event loop."""

    async def execute(
        self, spec: RunSpec, sink: ProgressSink, interrupt: threading.Event
    ) -> dict[str, NodeResult]:
        def load_image(name: str) -> bytes:
            if name not in spec.media:
                raise FileNotFoundError(name)
            return spec.media[name]

        started = time.monotonic()
        try:
            outputs = await execute_graph(
                spec.graph, load_image=load_image, hooks=_Hooks(sink), interrupt=interrupt
            )
        except GraphInvalid as exc:
            first = exc.problems[0]
            raise EnginePermanent(
                "; ".join(p.message for p in exc.problems),
                code=FailureCode.ENGINE_VALIDATION_FAILED,
                node_id=first.node_id,
            ) from None
        except NodeFailed as exc:
            raise EnginePermanent(str(exc), node_id=exc.node_id) from None
        except Interrupted as exc:
            finished = {node: _result(output) for node, output in exc.finished.items()}
            raise EngineInterrupted(finished) from None
        finally:
            await report_execution_time(sink, int((time.monotonic() - started) * 1000))
        return {node: _result(output) for node, output in outputs.items()}


class _Hooks:
    """The sink, with node progress passed on as a fraction (``report_node_progress``)."""

    def __init__(self, sink: ProgressSink) -> None:
        self._sink = sink

    async def node_started(self, node_id: str, class_type: str, index: int, total: int) -> None:
        await self._sink.node_started(node_id, class_type, index, total)

    async def node_finished(self, node_id: str, class_type: str, index: int, total: int) -> None:
        await self._sink.node_finished(node_id, class_type, index, total)

    async def node_progress(
        self, node_id: str, class_type: str, index: int, total: int, value: float, maximum: float
    ) -> None:
        await report_node_progress(self._sink, node_id, class_type, index, total, value, maximum)


def _result(output: NodeOutput) -> NodeResult:
    files = tuple(OutputFile(f.filename, f.data, f.mime_type) for f in output.images)
    return NodeResult(files=files, text=tuple(output.text))
