"""The public API as tests call it: submit, views, cancel, balance, bills (chenyu's envelope
unwrapped, the status checked), and a worker running in the background for a block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support.factories import Customer
from tests.support.waiting import until
from wfrun.runtime import Runtime
from wfrun.workers.worker import Worker

ENDED = ("succeeded", "failed", "cancelled")


def _data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def refusal(reason: str, detail: str, engine_code: str, status: int) -> dict[str, Any]:
    """The error envelope a refused request answers (``api/errors.py``)."""
    error = {"reason": reason, "detail": detail, "engine_code": engine_code, "status_code": status}
    return {"code": 1, "msg": reason, "data": {"error": error}}


async def submit(
    http: httpx.AsyncClient,
    who: Customer,
    workflow_id: str,
    key: str,
    inputs: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body = {"workflow_id": workflow_id, "idempotency_key": key, "inputs": inputs or {}} | fields
    return _data(await http.post("/workflow/run/submit", headers=who.headers, json=body))


async def quote(
    http: httpx.AsyncClient, who: Customer, workflow_id: str, inputs: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    body = {"workflow_id": workflow_id, "inputs": inputs} | fields
    return _data(await http.post("/workflow/run/quote", headers=who.headers, json=body))


async def execution(http: httpx.AsyncClient, who: Customer, run_id: str) -> dict[str, Any]:
    params = {"run_order_id": run_id}
    return _data(await http.get("/workflow/run/execution", params=params, headers=who.headers))


async def info(http: httpx.AsyncClient, who: Customer, run_id: str) -> dict[str, Any]:
    params = {"run_order_id": run_id}
    return _data(await http.get("/workflow/run/info", params=params, headers=who.headers))


async def cancel(http: httpx.AsyncClient, who: Customer, run_id: str) -> dict[str, Any]:
    body = {"run_order_id": run_id}
    return _data(await http.post("/workflow/run/cancel", json=body, headers=who.headers))


async def balance(http: httpx.AsyncClient, who: Customer) -> dict[str, Any]:
    return _data(await http.get("/balance/info", headers=who.headers))


async def bills(http: httpx.AsyncClient, who: Customer) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (_data(await http.get("/bill/list", headers=who.headers)))[
        "order_list"
    ]
    return listed


async def has_status(http: httpx.AsyncClient, who: Customer, run_id: str, *wanted: str) -> bool:
    return (await execution(http, who, run_id))["status"] in wanted


async def wait_status(
    http: httpx.AsyncClient, who: Customer, run_id: str, *wanted: str
) -> dict[str, Any]:
    """Waits until the run is at one of ``wanted`` (default: ended); its execution view."""
    statuses = wanted or ENDED
    await until(lambda: has_status(http, who, run_id, *statuses), what=f"{run_id} to be {statuses}")
    return await execution(http, who, run_id)


@asynccontextmanager
async def running_worker(rt: Runtime, worker: Worker | None = None) -> AsyncIterator[Worker]:
    """A worker (``Worker(rt)`` by default) running in the background for the block; it stops
    and finishes what it holds when the block ends."""
    worker = worker or Worker(rt)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task
