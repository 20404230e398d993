"""A replayed submit answers its original run whatever changed since it was first sent (issue
10, defect 4): the idempotency key is looked up before anything is validated or priced, so a
client retrying a request it already paid for never buys twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from tests.support.factories import (
    Customer,
    customer,
    money_snapshot,
    operator,
    png_bytes,
    publish_demo,
)
from wfrun.clock import utcnow
from wfrun.db.schema import assets
from wfrun.runtime import Runtime
from wfrun.services.seed import demo_package

SUBMIT = "/workflow/run/submit"


async def _upload(http: httpx.AsyncClient, who: Customer) -> str:
    response = await http.post(
        "/assets",
        files={"file": ("in.png", png_bytes(), "application/octet-stream")},
        data={"media_type": "image"},
        headers=who.headers,
    )
    assert response.status_code == 200, response.text
    uri: str = response.json()["data"]["asset_uri"]
    return uri


async def _submit(http: httpx.AsyncClient, who: Customer, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(SUBMIT, json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _first_submit(
    runtime: Runtime, http: httpx.AsyncClient
) -> tuple[str, Customer, dict[str, Any], dict[str, Any]]:
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice = await customer(runtime, balance="1")
    asset_uri = await _upload(http, alice)
    body = {
        "workflow_id": workflow_id,
        "idempotency_key": "order-1",
        "inputs": {"n1_image": asset_uri, "n6_value": "caption"},
    }
    first = await _submit(http, alice, body)
    assert first["idempotent_replay"] is False
    return owner, alice, body, first


async def test_a_replay_after_its_input_asset_expired_returns_the_run(runtime, http):
    _, alice, body, first = await _first_submit(runtime, http)
    async with runtime.db.transaction(write=True) as conn:
        await conn.execute(update(assets).values(expires_at=utcnow() - timedelta(hours=1)))
    before = await money_snapshot(runtime)

    again = await _submit(http, alice, body)

    assert (again["run_order_id"], again["idempotent_replay"]) == (first["run_order_id"], True)
    assert await money_snapshot(runtime) == before
    fresh = await http.post(
        SUBMIT, json={**body, "idempotency_key": "order-2"}, headers=alice.headers
    )
    assert fresh.status_code == 400  # a new request with that asset is refused, as it should
    error = fresh.json()["data"]["error"]
    assert error["engine_code"] == "INVALID_WORKFLOW_INPUT"
    assert "expired at" in error["detail"]


async def test_a_replay_after_a_new_revision_dropped_an_input_returns_the_run(runtime, http):
    owner, alice, body, first = await _first_submit(runtime, http)
    package = demo_package()
    package["inputs"] = [i for i in package["inputs"] if i["key"] != "n6_value"]
    await publish_demo(runtime, owner, inputs=package["inputs"])
    before = await money_snapshot(runtime)

    again = await _submit(http, alice, body)

    assert (again["run_order_id"], again["idempotent_replay"]) == (first["run_order_id"], True)
    assert again["revision_id"] == first["revision_id"]
    assert await money_snapshot(runtime) == before


async def test_a_replay_after_the_balance_ran_out_returns_the_run(runtime, http):
    _, alice, body, first = await _first_submit(runtime, http)
    for n in range(200):  # spend the rest of the balance on other runs
        spent = await http.post(
            SUBMIT, json={**body, "idempotency_key": f"spend-{n}"}, headers=alice.headers
        )
        if spent.status_code == 402:
            break
    assert spent.status_code == 402
    before = await money_snapshot(runtime)

    again = await _submit(http, alice, body)

    assert (again["run_order_id"], again["idempotent_replay"]) == (first["run_order_id"], True)
    assert await money_snapshot(runtime) == before
