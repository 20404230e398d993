"""``runs.wait`` on the event stream (open-api-v2.md §7 "Live runs").

The stream is not on main yet, so the first test serves it from a stand-in that speaks its
format (``event``/``id``/``data:`` JSON, ``: keepalive`` comments, ``last_event_id`` resume) and
breaks the first connection mid-stream; the second runs against the live app and checks the
real stream when the app has one (until then it checks the fallback to polling).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.client.conftest import Live
from tests.support.factories import drain
from tests.support.uvicorn_runner import serve_on_loopback, stop_serving
from tests.support.waiting import until
from wfrun.runtime import Runtime
from wfrun_client import AsyncClient, Client, RunEvent

RUN = "wfrun_0123456789abcdef0123"
INFO = {"run_order_id": RUN, "workflow_id": "wf_1", "run_status": "succeeded",
        "final_amount": "0.01000000", "outputs": {"n7_text": "hi"}}  # fmt: skip
EVENTS = [
    ("status", 4, {"run_order_id": RUN, "run_status": "queued", "change": "run.queued"}),
    ("status", 8, {"run_order_id": RUN, "run_status": "running", "change": "run.started"}),
    (
        "progress",
        12,
        {
            "run_order_id": RUN,
            "at": "t1",
            "event_type": "node_done",
            "message": "node 1",
            "node_id": "1",
            "progress_percent": 50,
        },
    ),
    ("status", 16, {"run_order_id": RUN, "run_status": "succeeded"}),
    ("output", 17, {"run_order_id": RUN, "outputs": {"n7_text": "hi"}}),
    ("done", 18, INFO),
]


def _ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 0, "msg": "查询成功", "data": data})


class StreamStandin:
    """Breaks the first stream after two events; records each resume point it was asked."""

    def __init__(self) -> None:
        self.resumed_after: list[str | None] = []

    async def execution(self, _request: Request) -> Response:
        return _ok({"run_order_id": RUN, "status": "queued",
                    "queue_info": {"position": 3, "estimated_wait_sec": 20}})  # fmt: skip

    async def info(self, _request: Request) -> Response:
        return _ok(INFO)

    async def events(self, request: Request) -> Response:
        after = request.query_params.get("last_event_id")
        self.resumed_after.append(after)
        first = len(self.resumed_after) == 1

        async def body() -> AsyncIterator[bytes]:
            yield b": keepalive\n\n"
            for name, event_id, data in EVENTS:
                if after is not None and event_id <= int(after):
                    continue
                yield f"event: {name}\nid: {event_id}\ndata: {json.dumps(data)}\n\n".encode()
                if first and event_id == 8:
                    raise RuntimeError("connection lost")  # uvicorn drops the connection

        return StreamingResponse(body(), media_type="text/event-stream")

    def app(self) -> Starlette:
        prefix = "/api/open/v2/workflow/run"
        return Starlette(routes=[
            Route(f"{prefix}/execution", self.execution),
            Route(f"{prefix}/info", self.info),
            Route(f"{prefix}/events", self.events),
        ])  # fmt: skip


async def test_wait_follows_the_stream_and_resumes_after_a_drop():
    standin = StreamStandin()
    server, task, port = await serve_on_loopback(standin.app())
    seen: list[RunEvent] = []
    try:
        async with AsyncClient(f"http://127.0.0.1:{port}", "k") as client:
            info = await client.runs.wait(RUN, on_event=seen.append, timeout=30)
    finally:
        await stop_serving(server, task)
    assert info.run_status == "succeeded"
    assert standin.resumed_after == [None, "8"]
    names = [(e.event, e.id) for e in seen]
    assert names == [("status", None), ("queue", None), ("status", 8), ("progress", 12),
                     ("status", 16), ("output", 17), ("done", 18)]  # fmt: skip


def _sync_wait(live: Live, run_id: str, seen: list[RunEvent]) -> str:
    with Client(live.server.base_url, live.key) as client:
        return client.runs.wait(run_id, on_event=seen.append, timeout=60).run_status


async def test_wait_on_the_live_app_follows_its_stream(idle: Live, runtime: Runtime):
    """The run is still queued (no worker) when the sync wait starts: it connects to the
    stream (events carry ids); then a worker runs it and the wait ends on the stream's done."""
    async with AsyncClient(idle.server.base_url, idle.key) as client:
        uri = (await client.assets.upload(idle.image)).asset_uri
        run = await client.runs.submit(idle.demo, {"n1_image": uri})
    seen: list[RunEvent] = []
    waiting = asyncio.create_task(asyncio.to_thread(_sync_wait, idle, run.run_order_id, seen))
    await until(_streaming(runtime), what="the wait to open the run's event stream")
    await drain(runtime)
    assert await waiting == "succeeded"
    assert [e.event for e in seen][-2:] == ["output", "done"]
    assert next(e.id for e in seen if e.event == "done") is not None, seen


def _streaming(runtime: Runtime) -> Callable[[], Awaitable[bool]]:
    async def opened() -> bool:
        return runtime.live.stream_count() == 1

    return opened
