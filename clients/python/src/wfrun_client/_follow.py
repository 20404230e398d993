"""Following a run to its end, sans IO: the event-stream parser and the :class:`Follower`
that turns stream events or polled ``run/execution`` snapshots into one sequence of
:class:`~wfrun_client.models.RunEvent` for ``on_event``.

Both sources feed the same follower, so a client that starts on the stream and falls back to
polling (or the reverse) reports each status change and log line once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wfrun_client import errors
from wfrun_client import models as m

EVENTS_PATH = "/workflow/run/events"
OnEvent = Callable[[m.RunEvent], None]


@dataclass
class SSEParser:
    """``text/event-stream`` lines in, complete events out (the WHATWG parsing rules that
    matter here: ``event``, ``data`` (joined by newlines), ``id``, comments ignored)."""

    event: str = "message"
    data: list[str] = field(default_factory=list)
    id: str | None = None

    def feed(self, line: str) -> m.RunEvent | None:
        """One line (without its newline); an event when ``line`` is the blank line ending it."""
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            self.id = value
        return None

    def _dispatch(self) -> m.RunEvent | None:
        if not self.data:
            self.event, self.id = "message", None
            return None
        try:
            data = json.loads("\n".join(self.data))
        except ValueError:
            data = {"text": "\n".join(self.data)}
        event_id = int(self.id) if self.id and self.id.isdigit() else None
        event = m.RunEvent(
            event=self.event, data=data if isinstance(data, dict) else {}, id=event_id
        )
        self.event, self.data, self.id = "message", [], None
        return event


def _log_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(entry.get(k) for k in ("at", "event_type", "message", "node_id"))


@dataclass
class Follower:
    """What has been reported of one run, so that every source reports only what is new."""

    run_id: str
    on_event: OnEvent | None = None
    status: str | None = None
    queue: m.QueueInfo | None = None
    last_id: int | None = None
    final: m.RunInfo | None = None
    _logs: set[tuple[Any, ...]] = field(default_factory=set)

    def _emit(self, event: str, data: dict[str, Any], event_id: int | None = None) -> None:
        if self.on_event is not None:
            self.on_event(m.RunEvent(event=event, data=data, id=event_id))

    def _status(self, status: str, data: dict[str, Any], event_id: int | None = None) -> None:
        if status != self.status:
            self.status = status
            self._emit("status", data, event_id)

    def _log(self, entry: dict[str, Any], event_id: int | None = None) -> None:
        key = _log_key(entry)
        if key in self._logs:
            return
        self._logs.add(key)
        progress = entry.get("progress_percent") is not None and entry.get("event_type") not in (
            "queued",
            "started",
            "running",
            *m.TERMINAL_STATUSES,
        )
        self._emit("progress" if progress else "log", entry, event_id)

    def queued(self, view: m.Execution) -> None:
        """A queued run's status and place before following the stream (which carries no
        queue place); a run past the queue is left to the stream, which replays it in order."""
        if view.status != "queued":
            return
        self._status(view.status, {"run_order_id": self.run_id, "run_status": view.status})
        if view.queue_info is not None:
            self.queue = view.queue_info
            self._emit("queue", view.queue_info.model_dump())

    def execution(self, view: m.Execution) -> bool:
        """A polled snapshot; True when the run has ended (then :meth:`finish` follows).
        Its new log lines come first: they happened before the status it shows."""
        for entry in view.logs:
            self._log({"run_order_id": self.run_id, **entry.model_dump()})
        self._status(view.status, {"run_order_id": self.run_id, "run_status": view.status})
        if view.queue_info != self.queue and view.status == "queued":
            self.queue = view.queue_info
            if view.queue_info is not None:
                self._emit("queue", view.queue_info.model_dump())
        return view.ended

    def stream(self, event: m.RunEvent) -> bool:
        """An event of the stream; True after ``done`` (``final`` is then set). An event at
        or before the last id seen (a server replaying after a resume) is skipped."""
        if event.id is not None and self.last_id is not None and event.id <= self.last_id:
            return False
        self.last_id = event.id if event.id is not None else self.last_id
        if event.event == "status":
            self._status(str(event.data.get("run_status")), event.data, event.id)
        elif event.event in ("log", "progress"):
            self._log(event.data, event.id)
        elif event.event == "output":
            self._emit("output", event.data, event.id)
        elif event.event == "done":
            self.final = m.RunInfo.model_validate(event.data)
            self._emit("done", event.data, event.id)
            return True
        return False

    def finish(self, info: m.RunInfo) -> m.RunInfo:
        """The run's final ``run/info`` after polling saw it end: ``output`` and ``done``."""
        self._status(
            info.run_status, {"run_order_id": info.run_order_id, "run_status": info.run_status}
        )
        if info.run_status == "succeeded":
            self._emit("output", {"run_order_id": info.run_order_id, "outputs": info.outputs})
        self._emit("done", info.model_dump(mode="json"))
        self.final = info
        return info


def stream_params(run_id: str, last_id: int | None) -> dict[str, str]:
    params = {"run_order_id": run_id}
    if last_id is not None:
        params["last_event_id"] = str(last_id)
    return params


def stream_unavailable(status: int, content_type: str) -> bool:
    """Whether the server has no event stream (an older wfrun, or chenyu): poll instead."""
    return status in (404, 405, 501) or (
        status == 200 and not content_type.startswith("text/event-stream")
    )


class StreamUnavailable(Exception):
    """The server has no event stream (or it is busy): follow the run by polling."""


def read_timeout(deadline: float | None) -> float:
    """Long enough to see the server's 15 s keepalives, short enough to honour a deadline."""
    if deadline is None:
        return 60.0
    return max(min(60.0, deadline - time.monotonic()), 0.1)


def check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise errors.WaitTimeout("the run had not ended when the wait timed out")


def pause(interval: float, deadline: float | None) -> float:
    """The next poll's pause: ``interval``, or what is left before the deadline."""
    if deadline is None:
        return interval
    return max(min(interval, deadline - time.monotonic()), 0.0)
