"""Media inputs given as URLs are fetched by the worker through the SSRF-safe fetcher."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.support.factories import (
    account_balance,
    customer,
    drain,
    operator,
    png_bytes,
    publish_demo,
)
from wfrun.db.runs import Run
from wfrun.fetch import FetchPolicy, SafeFetcher
from wfrun.runtime import Runtime
from wfrun.services import run_views, runs
from wfrun.services.accounts import Principal


@dataclass
class ImageServer:
    port: int
    body: bytes
    connections: list[str] = field(default_factory=list)


@pytest.fixture
async def image_server() -> AsyncIterator[ImageServer]:
    """A one-shot HTTP image server on loopback. Its teardown closes every connection it
    accepted and waits boundedly, so a client that left a connection open cannot hang it."""
    served = ImageServer(0, png_bytes(30, 20))
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        served.connections.append((await reader.readline()).decode().strip())
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(served.body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + served.body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    served.port = server.sockets[0].getsockname()[1]
    try:
        yield served
    finally:
        server.close()
        for writer in writers:
            writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)


async def _submit_url(runtime: Runtime, url: str) -> tuple[str, Run]:
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice = await customer(runtime, balance="1")
    principal = Principal(alice.account_id, "key_t", "alice")
    request = runs.RunRequest(
        workflow_id, None, {"n1_image": url, "n2_width": 60}, idempotency_key="u"
    )
    result = await runs.submit_run(runtime.db, principal, request, runtime.policy)
    await drain(runtime)
    view = await run_views.get_execution(runtime.db, principal, result.run.id, lease_seconds=5)
    return alice.account_id, view.run


async def test_url_input_is_fetched_when_the_operator_allows_the_network(runtime, image_server):
    await runtime.fetcher.aclose()
    runtime.fetcher = SafeFetcher(
        FetchPolicy(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    )
    _, run = await _submit_url(runtime, f"http://127.0.0.1:{image_server.port}/img.png")
    assert run.status == "succeeded", run.error_detail
    assert image_server.connections == ["GET /img.png HTTP/1.1"]


async def test_url_input_to_loopback_is_refused_by_default_and_released(runtime, image_server):
    account_id, run = await _submit_url(runtime, f"http://localhost:{image_server.port}/img.png")
    assert run.status == "failed"
    assert run.error_code == "MEDIA_URL_FORBIDDEN"
    assert "input n1_image" in (run.error_detail or "")
    assert run.final_amount == 0
    assert await account_balance(runtime, account_id) == (100_000_000, 0)
    assert image_server.connections == []  # refused before any connection
