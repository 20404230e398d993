"""The live event stream of ``GET /workflow/run/events`` (open-api-v2.md §7 "Live runs").

Source: the run stream (``run_stream``, migration 0009) — every status change (outbox row)
and every log line (``run_events`` row) of the caller's runs in one commit-ordered sequence,
appended by database triggers in the transaction that made them. One table read in id order
gives a single cursor, so a resume can neither skip nor repeat; a second copy of the events
(a table written only for streams) would have to be kept in step with the outbox by every
writer, and merging two tables by time has no unique order.

Events, with ``data:`` JSON:

* ``status`` — a change (``run_status``, ``previous_status``, ``change`` e.g. ``run.started``);
* ``progress`` — a log line with a percentage at a node boundary (or a provider's progress);
* ``log`` — every other log line (the ``run/execution`` ``logs[]`` entry);
* ``output`` — the run's outputs, after the change that ended it successfully;
* ``done`` — the run's ``run/info`` data (``model-runs/info`` for a model run), after the
  change that ended it; a one-run stream then ends.

Ids: ``id = 4 × row id + part`` (part 0 for the row's own event, 1 for ``output``, 2 for
``done``): they only grow, per run and per account, and a resume from any id (the
``Last-Event-ID`` header or ``last_event_id`` query) continues exactly after that event, even
between the events of one row. Memory per stream is one page (``live.page_size`` rows) and a
slow client is pushed back by the server (``live.send_timeout_seconds`` closes a stuck one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from sse_starlette import EventSourceResponse, JSONServerSentEvent, ServerSentEvent
from starlette.types import Receive, Scope, Send

from wfrun.api import wire
from wfrun.clock import to_rfc3339
from wfrun.db.runs import Run
from wfrun.db.stream import StreamItem
from wfrun.domain.runs import RunStatus
from wfrun.errors import InvalidParameter
from wfrun.runtime import Runtime
from wfrun.services import run_stream
from wfrun.services.accounts import Principal
from wfrun.storage.links import Links

PARTS = 4
ROW, OUTPUT, DONE = 0, 1, 2
MAX_EVENT_ID = 2**62
_STATUS_WORDS = frozenset(s.value for s in RunStatus) | {"started"}


def parse_last_event_id(header: str | None, query: str | None) -> int:
    """The id to resume after (0: from the start); the header wins, as a browser's
    ``EventSource`` sends it on reconnecting.

    Raises:
        InvalidParameter: not a non-negative integer id.
    """
    name, value = ("Last-Event-ID", header) if header is not None else ("last_event_id", query)
    if value is None or value.strip() == "":
        return 0
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_EVENT_ID:
        raise InvalidParameter(
            f"{name}: must be the id of an event of this stream (a non-negative integer), "
            f"got {value[:40]!r}"
        )
    return int(text)


@dataclass(frozen=True)
class StreamRequest:
    runtime: Runtime
    principal: Principal
    run_id: str | None
    after: int
    links: Links


async def events(req: StreamRequest) -> AsyncIterator[ServerSentEvent]:
    """Every event after ``req.after``, then each new one as it commits; a one-run stream
    ends after ``done``. Reads a page at a time; waits on the process's ``LiveSignal``."""
    live, settings = req.runtime.live, req.runtime.settings.live
    cursor = req.after // PARTS - 1  # rows read are > cursor: resume inside the last row
    with live.watch(req.principal.account_id) as watch:
        while True:
            # shielded: a client leaving mid-read cancels the stream, not a transaction
            page = await asyncio.shield(
                run_stream.read_page(
                    req.runtime.db,
                    req.principal,
                    run_id=req.run_id,
                    after=cursor,
                    limit=settings.page_size,
                )
            )
            for item in page.items:
                for event_id, event in render(item, page.ended, req.links):
                    if event_id > req.after:
                        yield event
                cursor = item.id
                if req.run_id is not None and run_stream.ends_run(item):
                    return
            if len(page.items) < settings.page_size:
                await watch.wait()


def render(
    item: StreamItem, ended: dict[str, Run], links: Links
) -> list[tuple[int, ServerSentEvent]]:
    """The events of one stream row, with their ids."""
    base = item.id * PARTS
    if item.source == "log":
        progress = item.progress_percent is not None and item.log_type not in _STATUS_WORDS
        kind = "progress" if progress else "log"
        return [(base, _event(base + ROW, kind, _log_data(item)))]
    rendered = [(base, _event(base + ROW, "status", _status_data(item)))]
    run = ended.get(item.run_id) if run_stream.ends_run(item) else None
    if run is None:
        return rendered
    if run.status is RunStatus.SUCCEEDED:
        outputs = {"run_order_id": run.id, "outputs": wire.outputs(run, links)}
        rendered.append((base + OUTPUT, _event(base + OUTPUT, "output", outputs)))
    done = wire.run_info(run, links) if run.family == "workflow" else wire.model_run(run, links)
    rendered.append((base + DONE, _event(base + DONE, "done", done)))
    return rendered


def _event(event_id: int, name: str, data: dict[str, Any]) -> ServerSentEvent:
    return JSONServerSentEvent(data, event=name, id=str(event_id), sep="\n")


def _status_data(item: StreamItem) -> dict[str, Any]:
    return {
        "run_order_id": item.run_id,
        "run_status": item.status,
        "previous_status": item.previous_status,
        "change": item.change_type,
        "attempt": item.change_attempt,
        "at": to_rfc3339(item.changed_at),
    }


def _log_data(item: StreamItem) -> dict[str, Any]:
    return {
        "run_order_id": item.run_id,
        "at": to_rfc3339(item.logged_at),
        "event_type": item.log_type,
        "level": item.level,
        "message": item.message,
        "node_id": item.node_id,
        "progress_percent": item.progress_percent,
    }


class EventStream(EventSourceResponse):
    """An SSE response that runs ``on_close`` however it ends (the stream-slot release):
    finished, client gone, send timed out, or server shutting down."""

    def __init__(
        self,
        content: AsyncIterator[ServerSentEvent],
        runtime: Runtime,
        on_close: Callable[[], None],
    ) -> None:
        settings = runtime.settings.live
        super().__init__(
            content,
            ping=settings.keepalive_seconds,
            ping_message_factory=lambda: ServerSentEvent(comment="keepalive", sep="\n"),
            send_timeout=settings.send_timeout_seconds,
            sep="\n",
        )
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
