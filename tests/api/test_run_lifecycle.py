"""The paid run lifecycle through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image

from tests.support.factories import (
    Customer,
    account_balance,
    customer,
    data_uri,
    drain,
    operator,
    png_bytes,
    publish_demo,
)
from wfrun.domain.money import format_amount, parse_amount
from wfrun.runtime import Runtime


def ok(response: httpx.Response) -> Any:
    body = response.json()
    assert response.status_code == 200, body
    assert body["code"] == 0, body
    return body["data"]


async def submit(http: httpx.AsyncClient, who: Customer, body: dict[str, Any]) -> httpx.Response:
    return await http.post("/workflow/run/submit", json=body, headers=who.headers)


async def test_walk_from_market_to_downloaded_output(runtime: Runtime, http: httpx.AsyncClient):
    owner = await operator(runtime)
    await publish_demo(runtime, owner)
    alice = await customer(runtime, balance="5")

    market = ok(await http.get("/workflow/market/list", headers=alice.headers))
    assert market["total"] == 1
    item = market["items"][0]
    assert item["quote_amount"] == "0.03000000"
    info = ok(
        await http.get(
            "/workflow/market/info",
            params={"workflow_id": item["workflow_id"]},
            headers=alice.headers,
        )
    )
    keys = {entry["key"] for entry in info["editable_parameter_manifest"]}
    assert {"n1_image", "n2_width", "n6_value"} <= keys
    assert "binding" not in info["editable_parameter_manifest"][0]

    body = {
        "workflow_id": item["workflow_id"],
        "idempotency_key": "walk-1",
        "inputs": {"n1_image": data_uri(png_bytes(40, 20)), "n2_width": 80, "n6_value": "hi"},
    }
    submitted = ok(await submit(http, alice, body))
    assert submitted["run_status"] == "queued"
    assert submitted["freeze_status"] == "frozen"
    assert submitted["idempotent_replay"] is False
    assert await account_balance(runtime, alice.account_id) == (
        parse_amount("4.97"),
        parse_amount("0.03"),
    )

    await drain(runtime)

    run_id = submitted["run_order_id"]
    execution = ok(
        await http.get(
            "/workflow/run/execution", params={"run_order_id": run_id}, headers=alice.headers
        )
    )
    assert execution["status"] == "succeeded"
    assert execution["progress_percent"] == 100
    assert execution["outputs"]["n7_text"] == "hi"
    node_logs = [
        entry["node_id"] for entry in execution["logs"] if entry["event_type"] == "executed"
    ]
    assert node_logs == ["1", "2", "3", "4", "5", "6", "7"]
    assert execution["actual_execution_duration_sec"] > 0

    (url,) = execution["outputs"]["n5_images"]
    async with httpx.AsyncClient() as plain:
        download = await plain.get(url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(download.content))
    assert image.size == (80, 40)
    assert image.getpixel((40, 20)) == (54, 225, 225)  # (200, 30, 30) inverted as ComfyUI does

    info = ok(
        await http.get("/workflow/run/info", params={"run_order_id": run_id}, headers=alice.headers)
    )
    final, released = parse_amount(info["final_amount"]), parse_amount(info["released_amount"])
    assert info["settlement_status"] == "settled"
    assert info["freeze_status"] == "settled"
    assert 0 < final < parse_amount(info["quote_amount"])
    assert final + released == parse_amount(info["quote_amount"])
    assert info["total_cost"] == info["final_amount"]

    balance = ok(await http.get("/balance/info", headers=alice.headers))
    assert balance["available_amount"] == format_amount(parse_amount("5") - final)
    assert balance["frozen_amount"] == "0.00000000"

    listed = ok(await http.get("/workflow/run/list", headers=alice.headers))
    assert [r["run_order_id"] for r in listed["items"]] == [run_id]
    assert listed["items"][0]["final_amount"] == info["final_amount"]


async def test_output_links_are_signed_and_refuse_tampering_and_expiry(
    runtime: Runtime, http: httpx.AsyncClient
):
    owner = await operator(runtime)
    await publish_demo(runtime, owner)
    alice = await customer(runtime)
    workflow_id = ok(await http.get("/workflow/market/list", headers=alice.headers))["items"][0][
        "workflow_id"
    ]
    run = ok(
        await submit(
            http,
            alice,
            {
                "workflow_id": workflow_id,
                "idempotency_key": "s",
                "inputs": {"n1_image": data_uri(png_bytes())},
            },
        )
    )
    await drain(runtime)
    execution = ok(
        await http.get(
            "/workflow/run/execution",
            params={"run_order_id": run["run_order_id"]},
            headers=alice.headers,
        )
    )
    url = execution["outputs"]["n5_images"][0]
    if "X-Amz-Signature=" in url:
        # S3 signs its own links (SigV4, checked in tests/storage); wfrun asks for its TTL.
        assert f"X-Amz-Expires={runtime.settings.signed_url_ttl_seconds}" in url
        return
    tampered = url.replace("wfrun_demo_00001_", "wfrun_demo_00002_")
    base, _, _query = url.partition("?")
    expired = (
        base + "?expires=1&signature=" + runtime.signer.signature(base.split("/files/", 1)[1], 1)
    )
    async with httpx.AsyncClient() as plain:
        for bad in (tampered, expired):
            response = await plain.get(bad)
            assert response.status_code == 403
            assert response.json()["data"]["error"]["engine_code"] == "SIGNED_URL_INVALID"


async def test_queue_position_and_eta_while_queued(runtime: Runtime, http: httpx.AsyncClient):
    owner = await operator(runtime)
    await publish_demo(runtime, owner)
    alice = await customer(runtime)
    workflow_id = ok(await http.get("/workflow/market/list", headers=alice.headers))["items"][0][
        "workflow_id"
    ]
    run_ids = []
    for i in range(3):
        body = {
            "workflow_id": workflow_id,
            "idempotency_key": f"q{i}",
            "inputs": {"n1_image": data_uri(png_bytes())},
        }
        run_ids.append(ok(await submit(http, alice, body))["run_order_id"])
    positions = []
    for run_id in run_ids:
        view = ok(
            await http.get(
                "/workflow/run/execution", params={"run_order_id": run_id}, headers=alice.headers
            )
        )
        assert view["status"] == "queued"
        positions.append(view["queue_info"]["position"])
        assert view["queue_info"]["estimated_wait_sec"] >= 0
    assert positions == [1, 2, 3]
    # No worker has ever heartbeated: the ETA assumes one slot and the revision's estimate
    # (two runs ahead of 10 s each before this one starts), and the reason says so.
    last = ok(
        await http.get(
            "/workflow/run/execution", params={"run_order_id": run_ids[2]}, headers=alice.headers
        )
    )
    assert last["queue_info"]["estimated_wait_sec"] == 20
    assert last["queue_info"]["reason"] == "no worker is running"
    await drain(runtime)
