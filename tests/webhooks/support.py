"""Calls of the webhook API as tests make them (envelope unwrapped, status checked)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.factories import Customer, operator, publish_package, sleepy_package
from tests.support.waiting import until
from wfrun.runtime import Runtime


def ok(response: httpx.Response) -> Any:
    body = response.json()
    assert response.status_code == 200, body
    assert body["code"] == 0, body
    return body["data"]


async def add_endpoint(
    http: httpx.AsyncClient, who: Customer, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "description": "test receiver"}
    if events is not None:
        body["events"] = events
    return ok(await http.post("/webhooks/endpoints", json=body, headers=who.headers))  # type: ignore[no-any-return]


async def deliveries(http: httpx.AsyncClient, who: Customer, **query: str) -> list[dict[str, Any]]:
    data = ok(await http.get("/webhooks/deliveries", params=query, headers=who.headers))
    return data["items"]  # type: ignore[no-any-return]


async def quick_workflow(rt: Runtime) -> str:
    """A local workflow that ends at once."""
    return await publish_package(rt, await operator(rt), sleepy_package(seconds=0))


async def submit(
    http: httpx.AsyncClient, who: Customer, workflow_id: str, key: str, **fields: Any
) -> httpx.Response:
    body = {"workflow_id": workflow_id, "idempotency_key": key, "inputs": {}} | fields
    return await http.post("/workflow/run/submit", json=body, headers=who.headers)


async def settled(http: httpx.AsyncClient, who: Customer, **query: str) -> list[dict[str, Any]]:
    """The deliveries once none is due or in flight any more (a receiver's answer reaches the
    log a moment after the receiver saw the request)."""
    found: list[dict[str, Any]] = []

    async def done() -> bool:
        found[:] = await deliveries(http, who, **query)
        return bool(found) and all(d["status"] in ("succeeded", "failed") for d in found)

    await until(done, what=f"deliveries {query or ''} to settle")
    return found
