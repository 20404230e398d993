"""Faults answered rightly, over raw HTTP/1.1 on loopback: a body over its limit is a 413 before
the rest of it is sent (and before authentication); a bug's 500 keeps the connection usable or
says ``Connection: close``; every 503 carries ``Retry-After``.

Every wait here is on bytes arriving; ``asyncio.timeout`` only bounds a failure.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.factories import customer
from tests.support.server import LiveServer
from tests.support.uvicorn_runner import serve_on_loopback, stop_serving
from wfrun.api.app import create_app
from wfrun.api.deps import API_PREFIX
from wfrun.runtime import Runtime

WAIT = 20  # seconds before a missing answer fails the test


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = json.loads(self.body)["data"]["error"]
        assert error["status_code"] == self.status
        return error


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").strip().split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(int(status_line.split()[1]), headers, body)


@pytest.fixture
async def raw(
    server: LiveServer,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    port = int(server.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        await writer.wait_closed()


def request_head(method: str, path: str, **headers: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_a_huge_declared_body_is_refused_before_it_is_sent(runtime, raw):
    reader, writer = raw
    head = request_head(
        "POST",
        f"{API_PREFIX}/workflow/run/submit",
        **{"Content-Type": "application/json", "Content-Length": str(600 * 1024 * 1024)},
    )
    writer.write(head + b'{"inputs": {"prompt": "' + b"x" * 16_384)  # 16 KiB of 600 MB
    await writer.drain()
    async with asyncio.timeout(WAIT):
        answer = await read_answer(reader)
    assert answer.status == 413
    assert answer.error["engine_code"] == "PAYLOAD_TOO_LARGE"
    assert answer.error["detail"] == (
        "the body is 629145600 bytes; at most 1048576 bytes are accepted here "
        "(upload large media with POST /assets and pass its asset:// URI)"
    )


async def test_a_streamed_body_is_refused_once_it_crosses_the_limit(runtime, raw):
    runtime.settings.api.max_json_bytes = 100_000
    reader, writer = raw
    writer.write(
        request_head(
            "POST",
            f"{API_PREFIX}/workflow/run/quote",
            **{"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        )
    )
    chunk = b"x" * 10_000
    for _ in range(11):  # 110 000 bytes, and the chunked body is never finished
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    await writer.drain()
    async with asyncio.timeout(WAIT):
        answer = await read_answer(reader)
    assert answer.status == 413
    assert answer.error["engine_code"] == "PAYLOAD_TOO_LARGE"
    assert answer.error["detail"] == (
        "the body is over 100000 bytes; at most 100000 bytes are accepted here "
        "(upload large media with POST /assets and pass its asset:// URI)"
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_every_endpoint_has_a_limit_even_without_a_body_of_its_own(runtime, raw, method):
    reader, writer = raw
    path = "/balance/info" if method == "GET" else "/real-person/verifications"
    writer.write(request_head(method, API_PREFIX + path, **{"Content-Length": str(2**31)}))
    await writer.drain()
    async with asyncio.timeout(WAIT):
        answer = await read_answer(reader)
    assert (answer.status, answer.error["engine_code"]) == (413, "PAYLOAD_TOO_LARGE")


async def test_an_upload_over_its_limit_is_refused_before_authentication(runtime, raw):
    runtime.settings.assets.max_upload_bytes = 100_000
    reader, writer = raw
    writer.write(
        request_head(
            "POST",
            f"{API_PREFIX}/assets",
            **{
                "Content-Type": "multipart/form-data; boundary=b",
                "Content-Length": str(100_000 + 64 * 1024 + 1),
            },
        )
        + b"--b\r\n"
    )
    await writer.drain()
    async with asyncio.timeout(WAIT):
        answer = await read_answer(reader)
    assert (answer.status, answer.error["engine_code"]) == (413, "ASSET_TOO_LARGE")


async def test_a_body_within_the_limit_is_read_as_before(runtime, http):
    runtime.settings.api.max_json_bytes = 100_000
    alice = await customer(runtime)
    body = {"workflow_id": "wf_missing", "inputs": {"text": "x" * 99_000}}
    response = await http.post("/workflow/run/quote", json=body, headers=alice.headers)
    assert response.status_code == 404, response.text
    assert response.json()["data"]["error"]["engine_code"] == "WORKFLOW_NOT_FOUND"


async def test_every_503_says_when_to_retry(runtime, http):
    alice = await customer(runtime)
    response = await http.post("/real-person/verifications", headers=alice.headers)
    assert response.status_code == 503
    assert response.json()["data"]["error"]["engine_code"] == "REAL_PERSON_REGISTRATION_UNAVAILABLE"
    assert response.headers["retry-after"] == "5"
    runtime.settings.api.retry_after_seconds = 30  # read per app: a new app takes it
    other = create_app(runtime.settings, runtime=runtime)
    server, task, port = await serve_on_loopback(other, lifespan="on")
    try:
        async with asyncio.timeout(WAIT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                request_head(
                    "POST",
                    f"{API_PREFIX}/real-person/verifications",
                    **{"Authorization": f"Bearer {alice.key}", "Content-Length": "0"},
                )
            )
            answer = await read_answer(reader)
            writer.close()
            await writer.wait_closed()
    finally:
        await stop_serving(server, task)
    assert (answer.status, answer.headers["retry-after"]) == (503, "30")


async def _boom() -> None:
    raise RuntimeError("a bug")


@pytest.fixture
async def buggy(runtime: Runtime) -> AsyncIterator[int]:
    """The real app plus one route with a bug, on a loopback port."""
    app = create_app(runtime.settings, runtime=runtime)
    app.add_api_route("/boom", _boom, methods=["GET", "POST"])
    server, task, port = await serve_on_loopback(app, lifespan="on")
    try:
        yield port
    finally:
        await stop_serving(server, task)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_500_keeps_the_connection_usable_or_says_it_closes(buggy, method, caplog):
    reader, writer = await asyncio.open_connection("127.0.0.1", buggy)
    extra = {"Content-Type": "application/json", "Content-Length": "2"} if method == "POST" else {}
    pipelined = (
        request_head(method, "/boom", **extra)
        + (b"{}" if method == "POST" else b"")
        + request_head("GET", "/healthz")
    )
    try:
        writer.write(pipelined)
        async with asyncio.timeout(WAIT):
            first = await read_answer(reader)
            assert (first.status, first.error["engine_code"]) == (500, "INTERNAL_ERROR")
            if first.headers.get("connection") == "close":
                assert await reader.read() == b""  # and it does close
            else:
                second = await read_answer(reader)  # the next request is answered
                assert second.status == 200
                assert json.loads(second.body)["msg"] == "ok"
    finally:
        writer.close()
        await writer.wait_closed()
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["unhandled error"]
