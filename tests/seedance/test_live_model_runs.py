"""Live model runs against the Ark stand-in: ``Prefer: wait`` on ``/model-runs/videos`` answers
with the ended task and its execution view, and the task's event stream ends with ``done``
carrying its ``model-runs/info`` data."""

from __future__ import annotations

import httpx

from tests.seedance.ark_standin import ArkStandin
from tests.seedance.test_model_runs import video_body
from tests.support.api import running_worker
from tests.support.factories import customer
from tests.support.sse import open_stream
from wfrun.runtime import Runtime


async def test_a_waiting_video_submit_answers_with_the_ended_task(
    runtime: Runtime, http: httpx.AsyncClient, standin: ArkStandin
):
    alice = await customer(runtime, balance="20")
    async with running_worker(runtime):
        response = await http.post(
            "/model-runs/videos",
            json=video_body("wait-v"),
            headers=alice.headers | {"Prefer": "wait=50"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "wait=50"
    data = response.json()["data"]
    assert (data["status"], data["settlement_status"]) == ("succeeded", "settled")
    assert data["execution"]["status"] == "succeeded"
    assert data["execution"]["outputs"]["video"]

    async with open_stream(http, alice.headers, run_id=data["run_id"]) as stream:
        events = await stream.rest()
    statuses = [e.data["run_status"] for e in events if e.event == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    assert [e.event for e in events][-2:] == ["output", "done"]
    done = events[-1].data
    assert (done["run_id"], done["status"]) == (data["run_id"], "succeeded")
    assert done["final_amount"] == data["final_amount"]
