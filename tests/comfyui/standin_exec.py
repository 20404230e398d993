"""Runs one queued prompt on the stand-in with wfrun's local executor, emitting ComfyUI's events.

Reproduced (reference §5.2–§5.4, §6.4, §7.1, §7.3, §7.5):

- Order: ``execution_start``, ``execution_cached``, per node ``progress_state`` (running),
  ``executing``, [``progress_state`` + ``progress`` while TestSleep sleeps: ``value`` = seconds
  slept of ``max`` = seconds, every ~20 ms], ``progress_state`` (finished); then ``executed`` for UI-output nodes,
  ``execution_success`` | ``execution_error`` | ``execution_interrupted``, history
  written, ``status``, ``executing`` with ``node: null``.
- Routing: events go to the prompt's ``client_id`` only; with no ``client_id`` the
  ``execution_*``/``executing``/``executed`` events go nowhere but ``progress_state`` and
  ``execution_interrupted`` are broadcast.
- An identical re-submission of the last successful prompt runs nothing:
  ``execution_cached`` lists every node, ``executed`` re-sends the same files.
- History entry: ``prompt``, ``outputs``, ``status`` (``status_str``, ``completed``,
  ``messages`` = the prompt-level events), ``meta``.

Not reproduced: ``executed`` comes after the last node rather than right after its node
(the local executor returns UI outputs at the end); ``progress`` only from TestSleep; no binary
previews; partial caching (only whole-prompt cache hits); a node error loses the UI outputs
of output nodes that had already finished (an interrupt keeps them in the history, as
ComfyUI does).
"""

from __future__ import annotations

import hashlib
import json
import re
import traceback
from typing import Any

from tests.comfyui.standin_files import Saved, temp_prefix
from tests.comfyui.standin_state import CacheEntry, QueueItem, StandinState
from wfrun.engines.local.executor import (
    GraphInvalid,
    Interrupted,
    NodeFailed,
    NodeOutput,
    execute_graph,
    validate_graph,
)
from wfrun.engines.local.nodes import NODE_SPECS

_COUNTER_SUFFIX = re.compile(r"^(.*)_\d{5}_\.png$")


class _Hooks:
    """``ExecutionHooks`` that emit ``progress_state`` and ``executing``."""

    def __init__(self, run: PromptRun) -> None:
        self._run = run
        self.nodes: dict[str, dict[str, Any]] = {}
        self.started: list[str] = []
        self.finished: list[str] = []

    async def node_started(self, node_id: str, class_type: str, index: int, total: int) -> None:
        self.started.append(node_id)
        self._run.state.current_node = node_id
        await self._progress_state(node_id, 0.0, "running")
        data = {"node": node_id, "display_node": node_id, "prompt_id": self._run.prompt_id}
        await self._run.emit("executing", data)
        state = self._run.state
        await state.holds.stop_at(self._run.prompt_id, node_id, index, state.run_interrupt)

    async def node_finished(self, node_id: str, class_type: str, index: int, total: int) -> None:
        self.finished.append(node_id)
        await self._progress_state(node_id, 1.0, "finished")

    async def node_progress(
        self, node_id: str, class_type: str, index: int, total: int, value: float, maximum: float
    ) -> None:
        """A long node (TestSleep) reports: ``progress_state`` then ``progress``, as captured."""
        await self._progress_state(node_id, value, "running", maximum)
        data = {"value": value, "max": maximum, "prompt_id": self._run.prompt_id, "node": node_id}
        await self._run.emit("progress", data)

    async def _progress_state(
        self, node_id: str, value: float, state: str, maximum: float = 1.0
    ) -> None:
        prompt_id = self._run.prompt_id
        self.nodes[node_id] = {
            "value": value,
            "max": maximum,
            "state": state,
            "node_id": node_id,
            "prompt_id": prompt_id,
            "display_node_id": node_id,
            "parent_node_id": None,
            "real_node_id": node_id,
        }
        snapshot = {"prompt_id": prompt_id, "nodes": dict(self.nodes)}
        await self._run.emit("progress_state", snapshot, broadcast=True)


class PromptRun:
    """One prompt's execution; ``execute`` ends with history written and ``executing(null)``."""

    def __init__(self, state: StandinState, item: QueueItem) -> None:
        self.state = state
        self.item = item
        self.prompt_id = item.prompt_id
        self.client_id = item.client_id
        self.messages: list[list[Any]] = []
        self.graph = {n: item.prompt[n] for n in item.prompt if _runs(item, n)}

    def _now(self) -> int:
        return self.state.clock.now_ms()

    async def emit(self, event: str, data: dict[str, Any], *, broadcast: bool = False) -> None:
        """Sends to the prompt's client; with no client only when ``broadcast``."""
        if self.client_id is not None or broadcast:
            await self.state.send(event, data, self.client_id)

    async def message(self, event: str, data: dict[str, Any], *, broadcast: bool = False) -> None:
        """A prompt-level event: also recorded in history ``status.messages``."""
        self.messages.append([event, data])
        await self.emit(event, data, broadcast=broadcast)

    async def execute(self) -> None:
        await self.message(
            "execution_start", {"prompt_id": self.prompt_id, "timestamp": self._now()}
        )
        signature = self._signature()
        cache = self.state.cache
        if cache is not None and cache.signature == signature:
            outputs, status = await self._replay(cache), "success"
        else:
            outputs, status = await self._run(signature)
        await self._finish(outputs, status)

    async def _run(self, signature: str) -> tuple[dict[str, dict[str, Any]], str]:
        cached = {"nodes": [], "prompt_id": self.prompt_id, "timestamp": self._now()}
        await self.message("execution_cached", cached)
        hooks = _Hooks(self)
        self.state.cache = None
        try:
            results = await execute_graph(
                self.graph,
                load_image=self.state.files.read_input,
                hooks=hooks,
                interrupt=self.state.run_interrupt,
            )
        except NodeFailed as exc:
            await self.message("execution_error", self._error_data(exc, hooks))
            return {}, "error"
        except Interrupted as exc:  # history keeps the finished output nodes' UI (ComfyUI's
            await self.message(  # history_result is built from its UI cache after the loop)
                "execution_interrupted", self._interrupted_data(hooks), broadcast=True
            )
            return {node_id: self._save(node_id, out) for node_id, out in exc.finished.items()}, (
                "error"
            )
        except GraphInvalid as exc:
            await self.message("execution_error", self._invalid_data(exc, hooks))
            return {}, "error"
        outputs = {node_id: self._save(node_id, out) for node_id, out in results.items()}
        await self._executed(outputs)
        self.state.cache = CacheEntry(signature, list(validate_graph(self.graph)), outputs)
        await self.message(
            "execution_success", {"prompt_id": self.prompt_id, "timestamp": self._now()}
        )
        return outputs, "success"

    async def _replay(self, cache: CacheEntry) -> dict[str, dict[str, Any]]:
        data = {"nodes": list(cache.nodes), "prompt_id": self.prompt_id, "timestamp": self._now()}
        await self.message("execution_cached", data)
        await self._executed(cache.outputs)
        nodes = {n: _finished_state(n, self.prompt_id) for n in cache.outputs}
        await self.emit(
            "progress_state", {"prompt_id": self.prompt_id, "nodes": nodes}, broadcast=True
        )
        await self.message(
            "execution_success", {"prompt_id": self.prompt_id, "timestamp": self._now()}
        )
        return cache.outputs

    async def _executed(self, outputs: dict[str, dict[str, Any]]) -> None:
        for node_id, output in outputs.items():
            data = {"node": node_id, "display_node": node_id, "output": output}
            await self.emit("executed", data | {"prompt_id": self.prompt_id})

    async def _finish(self, outputs: dict[str, dict[str, Any]], status: str) -> None:
        entry = {
            "prompt": self.item.history_wire(),
            "outputs": outputs,
            "status": {
                "status_str": status,
                "completed": status == "success",
                "messages": self.messages,
            },
            "meta": {n: _meta(n) for n in outputs},
        }
        await self.state.task_done(self.item, entry)
        await self.emit("executing", {"node": None, "prompt_id": self.prompt_id})

    def _save(self, node_id: str, output: NodeOutput) -> dict[str, Any]:
        """Stores the local executor's files under ComfyUI's names and types."""
        ui: dict[str, Any] = {}
        class_type = self.graph[node_id]["class_type"]
        saved: list[Saved] = []
        if class_type == "PreviewImage":
            prefix, subfolder, kind = temp_prefix(), "", "temp"
        else:
            prefix, subfolder, kind = "", self._subfolder(node_id), "output"
        for file in output.images:
            found = _COUNTER_SUFFIX.match(file.filename)
            name = prefix or (found.group(1) if found else "ComfyUI")
            saved.append(self.state.files.save(file.data, name, subfolder, kind))
        if saved:
            ui["images"] = [s.wire() for s in saved]
        if output.text:
            ui["text"] = list(output.text)
        return ui

    def _subfolder(self, node_id: str) -> str:
        prefix = self.graph[node_id].get("inputs", {}).get("filename_prefix")
        if isinstance(prefix, str) and "/" in prefix:
            return prefix.rsplit("/", 1)[0].strip("/")
        return ""

    def _signature(self) -> str:
        graph = {
            n: {k: v for k, v in node.items() if k != "_meta"} for n, node in self.graph.items()
        }
        files = {}
        for node_id, node in self.graph.items():
            image = node.get("inputs", {}).get("image")
            if node.get("class_type") == "LoadImage" and isinstance(image, str):
                path = self.state.files.input_path(image)
                files[node_id] = hashlib.sha256(path.read_bytes()).hexdigest() if path else ""
        return json.dumps([graph, files], sort_keys=True, default=str)

    def _error_data(self, exc: NodeFailed, hooks: _Hooks) -> dict[str, Any]:
        cause = exc.__cause__ or exc
        return {
            "prompt_id": self.prompt_id,
            "node_id": exc.node_id,
            "node_type": exc.class_type,
            "executed": list(hooks.finished),
            "exception_message": f"{cause}\n",
            "exception_type": _qualified(type(cause)),
            "traceback": _traceback(cause),
            "current_inputs": _current_inputs(self.graph.get(exc.node_id, {})),
            "current_outputs": list(hooks.finished),
            "timestamp": self._now(),
        }

    def _invalid_data(self, exc: GraphInvalid, hooks: _Hooks) -> dict[str, Any]:
        first = exc.problems[0]
        return {
            "prompt_id": self.prompt_id,
            "node_id": first.node_id,
            "node_type": first.class_type,
            "executed": list(hooks.finished),
            "exception_message": f"{exc}\n",
            "exception_type": "wfrun.engines.local.errors.GraphInvalid",
            "traceback": [],
            "current_inputs": {},
            "current_outputs": list(hooks.finished),
            "timestamp": self._now(),
        }

    def _interrupted_data(self, hooks: _Hooks) -> dict[str, Any]:
        unfinished = [n for n in hooks.started if n not in hooks.finished]
        order = validate_graph(self.graph)
        remaining = [n for n in order if n not in hooks.finished]
        node_id = unfinished[0] if unfinished else (remaining[0] if remaining else None)
        node_type = self.graph[node_id]["class_type"] if node_id is not None else None
        return {
            "prompt_id": self.prompt_id,
            "node_id": node_id,
            "node_type": node_type,
            "executed": list(hooks.finished),
            "timestamp": self._now(),
        }


def _runs(item: QueueItem, node_id: str) -> bool:
    """Drops the output nodes that failed validation (the others are not outputs)."""
    node = item.prompt[node_id]
    spec = NODE_SPECS.get(str(node.get("class_type"))) if isinstance(node, dict) else None
    return spec is None or not spec.output_node or node_id in item.outputs


def _finished_state(node_id: str, prompt_id: str) -> dict[str, Any]:
    return {
        "value": 1,
        "max": 1,
        "state": "finished",
        "node_id": node_id,
        "prompt_id": prompt_id,
        "display_node_id": node_id,
        "parent_node_id": None,
        "real_node_id": node_id,
    }


def _meta(node_id: str) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "display_node": node_id,
        "parent_node": None,
        "real_node_id": node_id,
    }


def _qualified(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _traceback(exc: BaseException) -> list[str]:
    return [
        f'File "{frame.filename}", line {frame.lineno}, in {frame.name}'
        for frame in traceback.extract_tb(exc.__traceback__)
    ]


def _current_inputs(node: dict[str, Any]) -> dict[str, list[Any]]:
    inputs = node.get("inputs", {})
    return {
        name: [f"<output {value[1]} of node {value[0]}>" if isinstance(value, list) else value]
        for name, value in inputs.items()
    }
