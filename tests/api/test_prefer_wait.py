"""``Prefer: wait=N`` on submits, through the real server on both databases: the answer comes
when the run ends (with its execution view), or after N seconds with the run still queued;
replays wait the same way; a bad preference is a 400 naming the header, with nothing done."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.api import running_worker
from tests.support.factories import Customer, customer, data_uri, operator, png_bytes, publish_demo
from wfrun.runtime import Runtime


async def _setup(runtime: Runtime) -> tuple[Customer, str]:
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    return await customer(runtime, balance="5"), workflow_id


def _body(workflow_id: str, key: str) -> dict[str, Any]:
    inputs = {"n1_image": data_uri(png_bytes(16, 8)), "n2_width": 16, "n6_value": "waited"}
    return {"workflow_id": workflow_id, "idempotency_key": key, "inputs": inputs}


async def _submit(
    http: httpx.AsyncClient, who: Customer, body: dict[str, Any], prefer: str
) -> httpx.Response:
    return await http.post(
        "/workflow/run/submit", json=body, headers=who.headers | {"Prefer": prefer}
    )


async def test_a_waiting_submit_answers_with_the_ended_run(
    runtime: Runtime, http: httpx.AsyncClient
):
    alice, workflow_id = await _setup(runtime)
    async with running_worker(runtime):
        response = await _submit(http, alice, _body(workflow_id, "w1"), "wait=50")
        replay = await _submit(http, alice, _body(workflow_id, "w1"), "wait=50")
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "wait=50"
    data = response.json()["data"]
    assert data["run_status"] == "succeeded"
    assert data["freeze_status"] == "settled"
    assert data["idempotent_replay"] is False
    execution = data["execution"]
    assert execution["status"] == "succeeded"
    assert execution["outputs"]["n7_text"] == "waited"
    assert execution["progress_percent"] == 100
    assert replay.headers["Preference-Applied"] == "wait=50"
    again = replay.json()["data"]
    assert again["idempotent_replay"] is True
    assert again["run_order_id"] == data["run_order_id"]
    assert again["execution"]["status"] == "succeeded"


async def test_a_waiting_submit_answers_after_n_seconds_with_the_run_still_queued(
    runtime: Runtime, http: httpx.AsyncClient
):
    alice, workflow_id = await _setup(runtime)  # no worker runs: the run stays queued
    started = time.monotonic()
    response = await _submit(http, alice, _body(workflow_id, "w2"), "respond-async, wait=1")
    assert time.monotonic() - started >= 1.0  # it did wait (a lower bound, never a race)
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "wait=1"
    data = response.json()["data"]
    assert data["run_status"] == "queued"
    assert data["execution"]["status"] == "queued"
    assert data["execution"]["queue_info"]["position"] == 1
    replay = await _submit(http, alice, _body(workflow_id, "w2"), "wait=0")
    assert replay.headers["Preference-Applied"] == "wait=0"
    assert replay.json()["data"]["idempotent_replay"] is True
    assert replay.json()["data"]["execution"]["status"] == "queued"


async def test_without_a_wait_preference_the_answer_is_the_usual_one(
    runtime: Runtime, http: httpx.AsyncClient
):
    alice, workflow_id = await _setup(runtime)
    response = await _submit(http, alice, _body(workflow_id, "w3"), "respond-async")
    assert response.status_code == 200
    assert "Preference-Applied" not in response.headers
    assert "execution" not in response.json()["data"]


async def test_a_bad_wait_is_refused_naming_the_header_and_nothing_is_submitted(
    runtime: Runtime, http: httpx.AsyncClient
):
    alice, workflow_id = await _setup(runtime)
    for value in ("wait=61", "wait=abc", "wait=-1", "wait=1.5", "wait="):
        response = await _submit(http, alice, _body(workflow_id, "w4"), value)
        assert response.status_code == 400, (value, response.text)
        error = response.json()["data"]["error"]
        assert error["engine_code"] == "INVALID_PARAMETER"
        assert error["detail"].startswith("Prefer: wait"), error
    listed = await http.get("/workflow/run/list", headers=alice.headers)
    assert listed.json()["data"]["total"] == 0
    video = await http.post(
        "/model-runs/videos",
        json={"idempotency_key": "v", "inputs": {}},
        headers=alice.headers | {"Prefer": "wait=99"},
    )
    assert video.status_code == 400
    assert video.json()["data"]["error"]["detail"].startswith("Prefer: wait")
