"""ComfyUI wire messages (pure): WebSocket events, history entries and error shapes.

Protocol facts relied on (ComfyUI 0.3.64, see the shared protocol reference):

- Text frames are JSON ``{"type": T, "data": {...}}``; binary frames (previews,
  ``SaveImageWebsocket``) start with a 4-byte event type and are ignored here. Custom nodes
  may push any other ``type``, so unknown types are parsed but carry no meaning.
- Per-prompt events carry ``data.prompt_id``. ``executing`` with ``node: null`` is the
  reliable "prompt finished, history written" marker; ``execution_success`` races history.
  After a reconnect the server may send ``executing`` *without* ``prompt_id``.
- ``execution_cached.nodes`` lists the nodes served from cache (no ``executing`` for them);
  ``progress_state.nodes`` is a snapshot ``{id: {"state": running|finished|error, ...}}``.
- ``execution_error`` carries ``node_id``, ``node_type``, ``exception_type``,
  ``exception_message`` (ends in ``"\\n"``), ``traceback`` and ``current_inputs``.
- A 400 from ``POST /prompt`` is ``{"error": {type, message, details, extra_info},
  "node_errors": {id: {"errors": [...], "dependent_outputs": [...], "class_type"}}}``; for
  ``exception_during_(inner_)validation`` the ``input_name`` names the consumer's edge, not
  the bad input, so it is not reported. Class errors name the node only in ``details``
  (``"Node ID '#2'"``).
- History entries: ``{"prompt", "outputs": {id: ui}, "status": {"status_str",
  "completed", "messages": [[event, data], ...]}, "meta"}``; interrupted prompts have
  ``status_str: "error"`` and end with ``execution_interrupted``, failed ones with
  ``execution_error``. UI outputs list files as ``{"filename", "subfolder", "type"}``
  (``images``, ``audio``, ``gifs``, ...) and text under ``text``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from wfrun.domain.failures import FailureCode

VALIDATION_FAILED = FailureCode.ENGINE_VALIDATION_FAILED
EXECUTION_FAILED = FailureCode.ENGINE_EXECUTION_FAILED

_NODE_ID_IN_DETAILS = re.compile(r"Node ID '#([^']*)'")
_INPUT_NAME_UNRELIABLE = frozenset(
    {"exception_during_inner_validation", "exception_during_validation"}
)


@dataclass(frozen=True)
class ComfyEvent:
    """One parsed text frame."""

    type: str
    data: Mapping[str, Any]

    @property
    def prompt_id(self) -> str | None:
        """The prompt the event belongs to, if it says."""
        value = self.data.get("prompt_id")
        return value if isinstance(value, str) else None

    @property
    def node(self) -> str | None:
        """The node of ``executing``/``executed``/``progress`` (display node when given)."""
        value = self.data.get("display_node") or self.data.get("node")
        return value if isinstance(value, str) else None

    @property
    def is_prompt_done(self) -> bool:
        """True for ``executing`` with ``node: null`` and a ``prompt_id``: history is written."""
        return (
            self.type == "executing"
            and "node" in self.data
            and self.data["node"] is None
            and self.prompt_id is not None
        )

    def cached_nodes(self) -> tuple[str, ...]:
        """Node ids of an ``execution_cached`` event."""
        nodes = self.data.get("nodes") if self.type == "execution_cached" else None
        return tuple(n for n in nodes if isinstance(n, str)) if isinstance(nodes, list) else ()

    def finished_nodes(self) -> tuple[str, ...]:
        """Node ids a ``progress_state`` snapshot reports as ``finished``."""
        nodes = self.data.get("nodes") if self.type == "progress_state" else None
        if not isinstance(nodes, Mapping):
            return ()
        return tuple(
            str(node_id)
            for node_id, state in nodes.items()
            if isinstance(state, Mapping) and state.get("state") == "finished"
        )


def parse_message(frame: str | bytes) -> ComfyEvent | None:
    """Parses one WebSocket frame.

    Args:
        frame: The frame as received; ``bytes`` are binary frames.

    Returns:
        The event, or None for binary frames and anything that is not
        ``{"type": str, "data": object}`` JSON.
    """
    if isinstance(frame, bytes):
        return None
    try:
        message = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    kind, data = message.get("type"), message.get("data")
    if not isinstance(kind, str) or not isinstance(data, dict):
        return None
    return ComfyEvent(kind, data)


@dataclass(frozen=True)
class ComfyFailure:
    """A human-readable failure with the node it concerns and its wire code."""

    message: str
    code: FailureCode
    node_id: str | None = None


def describe_execution_error(data: Mapping[str, Any]) -> ComfyFailure:
    """Turns ``execution_error`` data into a precise failure.

    Args:
        data: The event's ``data`` (also found as the last history message).

    Returns:
        ``ENGINE_EXECUTION_FAILED`` naming node id, class and ComfyUI's exception.
    """
    node_id = _str_or_none(data.get("node_id"))
    where = _node_label(node_id, _str_or_none(data.get("node_type")))
    exc_type = str(data.get("exception_type") or "error")
    text = str(data.get("exception_message") or "").strip()
    message = f"{where} failed: {exc_type}: {text}" if text else f"{where} failed: {exc_type}"
    return ComfyFailure(message, EXECUTION_FAILED, node_id)


def describe_interruption(data: Mapping[str, Any]) -> str:
    """Describes ``execution_interrupted`` data (which node was running)."""
    node_id = _str_or_none(data.get("node_id"))
    if node_id is None:
        return "interrupted"
    return f"interrupted at {_node_label(node_id, _str_or_none(data.get('node_type')))}"


def describe_rejection(error: Mapping[str, Any], node_errors: Mapping[str, Any]) -> ComfyFailure:
    """Turns a ``POST /prompt`` rejection into a precise failure.

    Args:
        error: The reply's ``error`` object (may be empty for a 200 with ``node_errors``).
        node_errors: The reply's ``node_errors``.

    Returns:
        ``ENGINE_VALIDATION_FAILED`` naming every failing node, its class and input, with
        ComfyUI's message and details; ``node_id`` is the first failing node.
    """
    parts = list(_node_error_lines(node_errors))
    node_id = _first_node(node_errors)
    if not parts:
        message = str(error.get("message") or "Prompt rejected")
        details = str(error.get("details") or "")
        found = _NODE_ID_IN_DETAILS.search(details)
        node_id = found.group(1) if found else None
        parts.append(f"{message} ({details})" if details else message)
    kind = str(error.get("type") or "prompt_outputs_failed_validation")
    return ComfyFailure(
        f"ComfyUI rejected the prompt ({kind}): " + "; ".join(parts), VALIDATION_FAILED, node_id
    )


def _node_error_lines(node_errors: Mapping[str, Any]) -> Iterator[str]:
    for node_id in sorted(node_errors, key=_id_key):
        entry = node_errors[node_id]
        if not isinstance(entry, Mapping):
            continue
        label = _node_label(str(node_id), _str_or_none(entry.get("class_type")))
        errors = entry.get("errors")
        for err in errors if isinstance(errors, list) else []:
            if isinstance(err, Mapping):
                yield _input_error_line(label, err)


def _input_error_line(label: str, err: Mapping[str, Any]) -> str:
    extra = err.get("extra_info")
    input_name = extra.get("input_name") if isinstance(extra, Mapping) else None
    if err.get("type") in _INPUT_NAME_UNRELIABLE:
        input_name = None
    where = f"{label} input {input_name!r}" if isinstance(input_name, str) else label
    message = str(err.get("message") or err.get("type") or "invalid")
    details = str(err.get("details") or "")
    return f"{where}: {message}: {details}" if details else f"{where}: {message}"


def _first_node(node_errors: Mapping[str, Any]) -> str | None:
    ids = sorted(node_errors, key=_id_key)
    return str(ids[0]) if ids else None


def _node_label(node_id: str | None, class_type: str | None) -> str:
    return f"node {node_id or '?'} ({class_type or '?'})"


def _id_key(node_id: object) -> tuple[int, int, str]:
    text = str(node_id)
    return (0, int(text), text) if text.isascii() and text.isdigit() else (1, 0, text)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class FileRef:
    """A file an output node wrote, fetched with ``GET /view``."""

    filename: str
    subfolder: str = ""
    type: str = "output"


@dataclass(frozen=True)
class UiOutput:
    """What one output node shows: files and text."""

    files: tuple[FileRef, ...] = ()
    text: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """True when the node produced neither files nor text."""
        return not self.files and not self.text


def parse_ui_output(output: object) -> UiOutput:
    """Parses one node's UI output (history ``outputs[id]`` or ``executed.output``).

    Every list of ``{"filename", ...}`` objects counts as files (``images``, ``audio``,
    ``gifs``, ...); strings under ``text`` count as text; anything else is ignored.
    """
    if not isinstance(output, Mapping):
        return UiOutput()
    files: list[FileRef] = []
    texts: list[str] = []
    for key, value in output.items():
        if not isinstance(value, list):
            continue
        if key == "text":
            texts.extend(item for item in value if isinstance(item, str))
            continue
        files.extend(_file_ref(item) for item in value if _is_file(item))
    return UiOutput(tuple(files), tuple(texts))


def _is_file(item: object) -> bool:
    return isinstance(item, Mapping) and isinstance(item.get("filename"), str)


def _file_ref(item: Mapping[str, Any]) -> FileRef:
    subfolder = item.get("subfolder")
    kind = item.get("type")
    return FileRef(
        str(item["filename"]),
        subfolder if isinstance(subfolder, str) else "",
        kind if isinstance(kind, str) and kind else "output",
    )


Status = Literal["success", "error", "interrupted"]


@dataclass(frozen=True)
class HistoryOutcome:
    """How a finished prompt ended, from its history entry."""

    status: Status
    outputs: Mapping[str, UiOutput] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)
    """``execution_error`` / ``execution_interrupted`` data, when that is how it ended."""
    duration_ms: int | None = None
    """``execution_start`` → ``execution_success`` on the instance's clock: the time it
    actually executed (queue wait on the instance and transfers excluded)."""

    def failure(self) -> ComfyFailure:
        """The failure of an ``error`` outcome."""
        if self.detail:
            return describe_execution_error(self.detail)
        return ComfyFailure("ComfyUI reported the prompt as failed", EXECUTION_FAILED)


def parse_history_entry(entry: Mapping[str, Any]) -> HistoryOutcome:
    """Reads a ``GET /history/{id}`` entry (the value under the prompt id).

    Args:
        entry: The history entry.

    Returns:
        ``success`` (``status_str == "success"``, or no ``status`` but outputs), else
        ``interrupted`` / ``error`` after the last ``execution_*`` message.
    """
    outputs = _outputs(entry.get("outputs"))
    status = entry.get("status")
    if not isinstance(status, Mapping):
        return HistoryOutcome("success", outputs)
    if status.get("status_str") == "success":
        return HistoryOutcome("success", outputs, duration_ms=_duration(status.get("messages")))
    event, data = _last_message(status.get("messages"))
    if event == "execution_interrupted":
        return HistoryOutcome("interrupted", outputs, data)
    return HistoryOutcome("error", outputs, data if event == "execution_error" else {})


def executed_ms(entry: Mapping[str, Any]) -> int | None:
    """How long a finished prompt executed on the instance's clock: ``execution_start`` to
    its last ``execution_success`` / ``execution_interrupted`` / ``execution_error``; None
    when it never started (or the entry does not say)."""
    status = entry.get("status")
    if not isinstance(status, Mapping):
        return None
    ends = ("execution_success", "execution_interrupted", "execution_error")
    return _duration(status.get("messages"), ends)


def _duration(messages: object, ends: tuple[str, ...] = ("execution_success",)) -> int | None:
    stamps: dict[str, int] = {}
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, list) and len(message) == 2 and isinstance(message[1], Mapping):
            stamp = message[1].get("timestamp")
            if isinstance(stamp, int):
                stamps[str(message[0])] = stamp
    start = stamps.get("execution_start")
    end = next((stamps[name] for name in ends if name in stamps), None)
    return end - start if start is not None and end is not None and end >= start else None


def _outputs(raw: object) -> dict[str, UiOutput]:
    if not isinstance(raw, Mapping):
        return {}
    parsed = {str(node_id): parse_ui_output(output) for node_id, output in raw.items()}
    return {node_id: output for node_id, output in parsed.items() if not output.is_empty()}


def _last_message(messages: object) -> tuple[str | None, Mapping[str, Any]]:
    for message in reversed(messages if isinstance(messages, list) else []):
        if (
            isinstance(message, list)
            and len(message) == 2
            and message[0] in ("execution_error", "execution_interrupted")
            and isinstance(message[1], Mapping)
        ):
            return str(message[0]), message[1]
    return None, {}


def start_timestamp(entry: Mapping[str, Any]) -> int | None:
    """The ``execution_start`` timestamp recorded in a history entry, if any."""
    status = entry.get("status")
    messages = status.get("messages") if isinstance(status, Mapping) else None
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, list) and len(message) == 2 and message[0] == "execution_start":
            data = message[1]
            stamp = data.get("timestamp") if isinstance(data, Mapping) else None
            return stamp if isinstance(stamp, int) else None
    return None
