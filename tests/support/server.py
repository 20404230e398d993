"""Serve the real app with uvicorn on a loopback port inside the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tests.support.contract import ContractRecorder
from tests.support.uvicorn_runner import serve_on_loopback, stop_serving
from wfrun.api.app import create_app
from wfrun.api.deps import API_PREFIX
from wfrun.runtime import Runtime
from wfrun.workers.worker import run_embedded


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    contract: ContractRecorder | None = None
    """Checks every answer against the OpenAPI document (see tests/support/contract.py)."""

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX


@asynccontextmanager
async def start_server(
    runtime: Runtime, *, embedded_worker: bool = False
) -> AsyncIterator[LiveServer]:
    background = run_embedded if embedded_worker else None
    app = create_app(runtime.settings, runtime=runtime, background=background)
    recorder = ContractRecorder(app)
    server, task, port = await serve_on_loopback(recorder, lifespan="on")
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", recorder)
    finally:
        await stop_serving(server, task)
    assert recorder.problems == [], "answers off the OpenAPI document:\n" + "\n".join(
        recorder.problems
    )
