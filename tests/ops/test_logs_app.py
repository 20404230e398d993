"""The API's log in process, through :func:`wfrun.logs.configure` onto a buffer: a bug's 500
is one error line with one traceback whether it struck before the answer started or halfway
through a streamed one (then uvicorn's own "Exception in ASGI application" traceback is the
duplicate that is dropped); the format follows the stream (a terminal gets console lines).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi.responses import StreamingResponse

from tests.support.uvicorn_runner import serve_on_loopback, stop_serving
from wfrun import logs
from wfrun.api.app import create_app
from wfrun.config import LogSettings
from wfrun.runtime import Runtime


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """The process log configured as json onto a buffer; the logging set-up restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET}
    buffer = io.StringIO()
    logs.configure(LogSettings(format="json"), stream=buffer)
    try:
        yield buffer
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
        for name, was in quiet.items():
            logging.getLogger(name).setLevel(was)
        structlog.reset_defaults()


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line]


async def _boom() -> None:
    raise RuntimeError("a bug before the answer")


async def _boom_midway() -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"first part"
        raise RuntimeError("a bug halfway through")

    return StreamingResponse(body(), media_type="text/plain")


@pytest.fixture
async def buggy(runtime: Runtime) -> AsyncIterator[str]:
    """The real app plus two routes with a bug, on a loopback port."""
    app = create_app(runtime.settings, runtime=runtime)
    app.add_api_route("/boom", _boom, methods=["GET"])
    app.add_api_route("/boom-midway", _boom_midway, methods=["GET"])
    server, task, port = await serve_on_loopback(app, lifespan="on", log_level="info")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await stop_serving(server, task)


async def test_a_bug_before_the_answer_is_one_line_and_one_traceback(buggy, log_buffer):
    async with httpx.AsyncClient(base_url=buggy) as http:
        answer = await http.get("/boom", headers={"X-Request-Id": "bug-1"})
    assert (answer.status_code, answer.headers["x-request-id"]) == (500, "bug-1")
    lines = records(log_buffer)
    with_traceback = [r for r in lines if "exception" in r]
    assert [(r["event"], r["request_id"], r["method"], r["path"]) for r in with_traceback] == [
        ("unhandled error", "bug-1", "GET", "/boom")
    ]
    (error,) = with_traceback
    assert (error["error_type"], error["error"]) == (
        "builtins.RuntimeError",
        "a bug before the answer",
    )
    assert error["exception"].count("Traceback (most recent call last)") == 1
    assert [r["status"] for r in lines if r["logger"] == "wfrun.access"] == [500]


async def test_a_bug_halfway_through_a_streamed_answer_is_logged_once(buggy, log_buffer):
    headers = {"X-Request-Id": "bug-2"}
    async with (
        httpx.AsyncClient(base_url=buggy) as http,
        http.stream("GET", "/boom-midway", headers=headers) as answer,
    ):
        assert (answer.status_code, answer.headers["x-request-id"]) == (200, "bug-2")
        with pytest.raises(httpx.RemoteProtocolError):
            await answer.aread()  # the server drops the connection: the body is cut short
    lines = records(log_buffer)
    with_traceback = [r for r in lines if "exception" in r]
    assert [(r["event"], r["request_id"], r["path"]) for r in with_traceback] == [
        ("unhandled error", "bug-2", "/boom-midway")
    ]
    assert "Exception in ASGI application" not in log_buffer.getvalue()
    access = [r for r in lines if r["logger"] == "wfrun.access"]
    assert [(r["request_id"], r["status"]) for r in access] == [("bug-2", 200)]


async def test_request_ids_do_not_leak_between_concurrent_requests(buggy, log_buffer):
    async with httpx.AsyncClient(base_url=buggy) as http:
        answers = await asyncio.gather(
            *(http.get("/healthz", headers={"X-Request-Id": f"c-{i}"}) for i in range(20))
        )
    assert [a.headers["x-request-id"] for a in answers] == [f"c-{i}" for i in range(20)]
    access = [r for r in records(log_buffer) if r["logger"] == "wfrun.access"]
    assert sorted(r["request_id"] for r in access) == sorted(f"c-{i}" for i in range(20))
    assert {(r["route"], r["status"]) for r in access} == {("/healthz", 200)}


def test_auto_is_console_on_a_terminal_and_json_elsewhere():
    primary, secondary = os.openpty()
    with os.fdopen(secondary, "w") as terminal:
        assert logs.resolve_format("auto", terminal) == "console"
        assert logs.resolve_format("json", terminal) == "json"
    os.close(primary)
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("console", io.StringIO()) == "console"


def test_console_lines_carry_the_fields(log_buffer):
    buffer = io.StringIO()
    logs.configure(LogSettings(format="console", level="debug"), stream=buffer)
    structlog.contextvars.bind_contextvars(request_id="r-1")
    try:
        logging.getLogger("wfrun.test").debug(
            "hello %s", "there", extra={"run_order_id": "wfrun_1"}
        )
    finally:
        structlog.contextvars.clear_contextvars()
    (line,) = buffer.getvalue().splitlines()
    for part in ("[debug", "hello there", "request_id=r-1", "run_order_id=wfrun_1", "wfrun.test"):
        assert part in line, (part, line)
    assert log_buffer.getvalue() == ""  # configure replaced the earlier handler
