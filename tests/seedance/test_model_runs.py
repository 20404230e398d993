"""``/model-runs/videos|cancel|info`` through the HTTP API, against the Ark stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.seedance.ark_standin import ArkStandin, TaskPlan
from tests.seedance.conftest import dispatch_only
from tests.support.factories import Customer, account_balance, customer, drain
from tests.support.waiting import DEADLINE, until, until_true
from wfrun.db import outbox
from wfrun.domain.money import format_amount, parse_amount
from wfrun.runtime import Runtime
from wfrun.services import accounts
from wfrun.workers.worker import Worker

FAST = "doubao-seedance-2-0-fast-260128"
# 720p 16:9 5 s: 1280×720×121/1024 tokens at 37 CNY per million
QUOTE = -(-1280 * 720 * 121 // 1024) * parse_amount("37") // 1_000_000


def video_body(key: str, **inputs: Any) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "inputs": {
            "model": FAST,
            "prompt": "图片1中的小狗在草地上奔跑",
            "generation_category": "reference_to_video",
            "images": [{"uri": "https://cdn.example.com/dog.png", "role": "reference_image"}],
            "duration": 5,
            "resolution": "720p",
            "ratio": "16:9",
            **inputs,
        },
    }


async def post(
    http: httpx.AsyncClient, who: Customer, path: str, body: dict[str, Any], status: int = 200
) -> dict[str, Any]:
    response = await http.post(path, headers=who.headers, json=body)
    assert response.status_code == status, response.text
    payload: dict[str, Any] = response.json()
    return payload


async def model_info(http: httpx.AsyncClient, who: Customer, run_id: str) -> dict[str, Any]:
    response = await http.get("/model-runs/info", params={"run_id": run_id}, headers=who.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.fixture
async def worker(runtime: Runtime) -> AsyncIterator[Worker]:
    """A worker running in the background (dispatch + the batch tracker)."""
    stop = asyncio.Event()
    running = Worker(runtime)
    task = asyncio.create_task(running.run(stop))
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)


async def test_video_model_run_submits_tracks_and_settles_by_usage(
    runtime, http, standin: ArkStandin
):
    alice = await customer(runtime, balance="20")
    submitted = await post(
        http, alice, "/model-runs/videos", {**video_body("v1"), "request_id": "r-1"}
    )
    assert submitted["msg"] == "提交成功"
    data = submitted["data"]
    assert data["run_id"].startswith("modelrun_")
    assert len(data["run_id"].split("_")[1]) == 19
    assert data["gateway_task_id"].startswith("task_")
    assert (data["model"], data["provider"]) == (FAST, "volcengine_ark")
    assert (data["status"], data["settlement_status"]) == ("created", "pending")
    assert data["frozen_amount"] == format_amount(QUOTE)
    assert data["request_id"] == "r-1"
    assert data["idempotent_replay"] is False

    await drain(runtime)

    done = await model_info(http, alice, data["run_id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["settlement_status"] == "settled"
    assert done["usage"]["completion_tokens"] == 108_900
    assert done["final_amount"] == format_amount(QUOTE)  # usage equals the 16:9 quote
    assert done["released_amount"] == format_amount(0)
    assert done["outputs"]["video"]
    assert done["provider_task_id"] == standin.live_tasks()[0].id
    assert done["terminal_at"] is not None
    assert await account_balance(runtime, alice.account_id) == (parse_amount("20") - QUOTE, 0)
    # model runs are not workflow runs
    listed = await http.get("/workflow/run/list", headers=alice.headers)
    assert listed.json()["data"]["total"] == 0
    as_workflow = await http.get(
        "/workflow/run/info", params={"run_order_id": data["run_id"]}, headers=alice.headers
    )
    assert as_workflow.status_code == 404


async def test_idempotency_is_scoped_to_the_api_key(runtime, http, standin: ArkStandin):
    alice = await customer(runtime, balance="20")
    second_key = await accounts.create_key(runtime.db, account_id=alice.account_id)
    alice2 = Customer(alice.account_id, second_key.secret)
    first = (await post(http, alice, "/model-runs/videos", video_body("same")))["data"]
    again = (await post(http, alice, "/model-runs/videos", video_body("same")))["data"]
    assert again["run_id"] == first["run_id"]
    assert again["idempotent_replay"] is True
    other = (await post(http, alice2, "/model-runs/videos", video_body("same")))["data"]
    assert other["run_id"] != first["run_id"]
    assert other["idempotent_replay"] is False
    # two freezes (one per key), not three
    assert await account_balance(runtime, alice.account_id) == (
        parse_amount("20") - 2 * QUOTE,
        2 * QUOTE,
    )
    changed = await post(
        http, alice, "/model-runs/videos", video_body("same", duration=6), status=422
    )
    assert changed["data"]["error"]["engine_code"] == "IDEMPOTENCY_KEY_REUSED"
    await drain(runtime)
    assert len(standin.creates()) == 2


async def test_concurrent_identical_submits_make_one_task(runtime, http, standin: ArkStandin):
    alice = await customer(runtime, balance="50")
    replies = await asyncio.gather(
        *(post(http, alice, "/model-runs/videos", video_body("race")) for _ in range(10))
    )
    assert len({r["data"]["run_id"] for r in replies}) == 1
    assert sum(not r["data"]["idempotent_replay"] for r in replies) == 1
    await drain(runtime)
    assert len(standin.creates()) == 1


async def test_cancel_while_queued_here_releases_without_any_upstream_call(
    runtime, http, standin: ArkStandin
):
    alice = await customer(runtime, balance="20")
    run_id = (await post(http, alice, "/model-runs/videos", video_body("c0")))["data"]["run_id"]
    cancelled = await post(http, alice, "/model-runs/cancel", {"run_id": run_id})
    assert cancelled["msg"] == "取消成功"
    data = cancelled["data"]
    assert (data["status"], data["settlement_status"]) == ("cancelled", "released")
    assert (data["error_code"], data["error_message"]) == ("user_cancelled", "用户取消任务")
    assert data["released_amount"] == data["frozen_amount"] == format_amount(QUOTE)
    await drain(runtime)
    assert standin.creates() == []
    assert await account_balance(runtime, alice.account_id) == (parse_amount("20"), 0)


async def test_cancel_before_upstream_completion_cancels_upstream_and_releases(
    runtime, http, standin: ArkStandin, worker
):
    alice = await customer(runtime, balance="20")
    standin.next_task(TaskPlan(hold_queued=True))
    run_id = (await post(http, alice, "/model-runs/videos", video_body("c1")))["data"]["run_id"]
    await until_true(lambda: len(standin.live_tasks()) == 1, what="the task created upstream")
    [task] = standin.live_tasks()
    assert (await model_info(http, alice, run_id))["provider_task_id"] in (None, task.id)
    cancelled = (await post(http, alice, "/model-runs/cancel", {"run_id": run_id}))["data"]
    assert (cancelled["status"], cancelled["settlement_status"]) == ("cancelled", "released")
    assert cancelled["released_amount"] == format_amount(QUOTE)
    assert standin.status_of(task.id) == "cancelled"
    deletes = standin.calls("DELETE", f"/api/v3/contents/generations/tasks/{task.id}")
    assert len(deletes) == 1
    assert await account_balance(runtime, alice.account_id) == (parse_amount("20"), 0)
    again = (await post(http, alice, "/model-runs/cancel", {"run_id": run_id}))["data"]
    assert again["status"] == "cancelled"  # idempotent; nothing released twice
    async with runtime.db.transaction() as conn:
        changes = [e.event_type for e in await outbox.for_run(conn, run_id)]
    assert changes == ["model_run.queued", "model_run.started", "model_run.cancelled"]


async def test_cancel_after_upstream_completion_returns_the_settled_result(
    runtime, http, standin: ArkStandin
):
    alice = await customer(runtime, balance="20")
    run_id = (await post(http, alice, "/model-runs/videos", video_body("c2")))["data"]["run_id"]
    await dispatch_only(runtime)
    [task] = standin.live_tasks()
    await until_true(lambda: standin.status_of(task.id) == "succeeded", what="the task to succeed")
    stop = asyncio.Event()
    background = asyncio.create_task(Worker(runtime).run(stop))
    try:
        reply = await post(http, alice, "/model-runs/cancel", {"run_id": run_id})
    finally:
        stop.set()
        await background
    data = reply["data"]
    assert reply["msg"] == "操作成功"
    assert (data["status"], data["settlement_status"]) == ("succeeded", "settled")
    assert data["final_amount"] == format_amount(QUOTE)
    assert data["error_code"] is None
    assert standin.calls("DELETE", f"/api/v3/contents/generations/tasks/{task.id}") == []
    assert await account_balance(runtime, alice.account_id) == (parse_amount("20") - QUOTE, 0)


async def test_cancel_refused_upstream_while_running_settles_by_the_result(
    runtime, http, standin: ArkStandin, worker
):
    alice = await customer(runtime, balance="20")
    standin.next_task(TaskPlan(hold_running=True))
    run_id = (await post(http, alice, "/model-runs/videos", video_body("c3")))["data"]["run_id"]
    await until_true(lambda: len(standin.live_tasks()) == 1, what="the task created upstream")
    [task] = standin.live_tasks()
    await until_true(lambda: standin.status_of(task.id) == "running", what="the task to run")
    reply = (await post(http, alice, "/model-runs/cancel", {"run_id": run_id}))["data"]
    assert reply["status"] == "running"
    assert reply["cancel_outcome"] == "cancel_requested"
    standin.release(task.id, running_s=0.0)

    async def succeeded() -> dict[str, Any] | None:
        view = await model_info(http, alice, run_id)
        return view if view["status"] == "succeeded" else None

    done = await until(succeeded, what=f"model run {run_id} to succeed")
    assert done["settlement_status"] == "settled"
    assert await account_balance(runtime, alice.account_id) == (parse_amount("20") - QUOTE, 0)


async def test_chenyu_curl_style_top_level_inputs_are_accepted(runtime, http, standin):
    alice = await customer(runtime, balance="20")
    body = {
        "idempotency_key": "flat",
        "inputs": {},
        "inputs.model": FAST,
        "inputs.prompt": "一只白色机器人在未来城市街道上行走,电影感镜头",
        "inputs.generation_category": "text_to_video",
        "inputs.duration": 5,
        "inputs.resolution": "480p",
        "inputs.ratio": "16:9",
        "inputs.contains_real_person_material": False,
    }
    data = (await post(http, alice, "/model-runs/videos", body))["data"]
    await drain(runtime)
    assert (await model_info(http, alice, data["run_id"]))["status"] == "succeeded"
    assert standin.creates()[0].json()["resolution"] == "480p"


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        ({"inputs": {"model": FAST, "prompt": "x"}}, 400, "IDEMPOTENCY_KEY_REQUIRED", "required"),
        (video_body("b", model="sora-2"), 400, "INVALID_WORKFLOW_INPUT", "input model must be"),
        (video_body("b", resolution="1080p"), 400, "INVALID_WORKFLOW_INPUT", "480p, 720p"),
        (video_body("b", prmpt="typo"), 400, "INVALID_WORKFLOW_INPUT", "input prmpt"),
        ({**video_body("b"), "extra": 1}, 400, "INVALID_PARAMETER", "extra"),
        (
            video_body("b", contains_real_person_material=True, duration=15),
            402,
            "INSUFFICIENT_BALANCE",
            "",
        ),
    ],
)
async def test_bad_model_run_requests_change_nothing(
    runtime, http, standin: ArkStandin, body, status, code, detail
):
    alice = await customer(runtime, balance="1")
    error = (await post(http, alice, "/model-runs/videos", body, status=status))["data"]["error"]
    assert error["engine_code"] == code
    assert detail in error["detail"]
    assert await account_balance(runtime, alice.account_id) == (parse_amount("1"), 0)
    assert standin.creates() == []


async def test_unknown_and_foreign_model_runs_are_not_found(runtime, http, standin):
    alice = await customer(runtime, balance="20")
    bob = await customer(runtime, balance="20", name="bob")
    run_id = (await post(http, alice, "/model-runs/videos", video_body("x")))["data"]["run_id"]
    for who, rid in ((bob, run_id), (alice, "modelrun_1_deadbeef")):
        response = await http.get("/model-runs/info", params={"run_id": rid}, headers=who.headers)
        assert response.status_code == 404
        assert response.json()["data"]["error"]["engine_code"] == "MODEL_RUN_NOT_FOUND"
    missing = await post(http, bob, "/model-runs/cancel", {"run_id": run_id}, status=404)
    assert missing["data"]["error"]["engine_code"] == "MODEL_RUN_NOT_FOUND"
    await drain(runtime)
