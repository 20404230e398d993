"""Seedance workflow runs end to end: HTTP API → worker → official Ark SDK → Ark stand-in.

Every test runs on SQLite (local files) and PostgreSQL (S3 on moto); the runtime fixture checks
the ledger after each one, so "settled or released exactly once" is also a books check.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta
from importlib import resources
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.seedance.ark_media import build_mp4, read_mp4
from tests.seedance.ark_standin import ArkStandin, TaskPlan
from tests.seedance.conftest import PUBLIC_BASE, dispatch_only
from tests.support.factories import (
    Customer,
    account_balance,
    customer,
    data_uri,
    drain,
    operator,
    png_bytes,
)
from tests.support.waiting import until, until_true
from wfrun.db import outbox
from wfrun.db.runs import find_run
from wfrun.db.schema import jobs
from wfrun.domain.money import format_amount, parse_amount
from wfrun.engines.seedance.wire import ark_create_arguments
from wfrun.errors import InvalidWorkflowPackage
from wfrun.runtime import Runtime
from wfrun.services import catalog, claims, provider_runs
from wfrun.services.seed import ensure_demo
from wfrun.workers import seedance as seedance_worker
from wfrun.workers.seedance import Tracker
from wfrun.workers.worker import Worker

FAST = "doubao-seedance-2-0-fast-260128"
MP4 = build_mp4(320, 320, 2000)
TASKS = "/api/v3/contents/generations/tasks"


def demo_package(**changes: Any) -> dict[str, Any]:
    text = resources.files("wfrun").joinpath("demo/seedance_video.json").read_text()
    document: dict[str, Any] = json.loads(text)
    document.update(changes)
    return document


async def publish(rt: Runtime, **changes: Any) -> catalog.ImportResult:
    owner = await operator(rt)
    return await catalog.import_package(
        rt.db, owner_id=owner, document=demo_package(**changes), publish=True
    )


def chenyu_example(workflow_id: str, revision_id: str, key: str) -> dict[str, Any]:
    """chenyu's Seedance example run (open-api-v2.md §3): reference_to_video on
    doubao-seedance-2-0-fast-260128, a reference image as ``{"source_type": "url", "url",
    "role": "reference_image"}``, resolution "720p", duration "5" (a string),
    contains_real_person_material false both inside inputs and at the top level, and
    accept_external_cost_risk false; only the ids are ours."""
    return {
        "workflow_id": workflow_id,
        "revision_id": revision_id,
        "inputs": {
            "prompt": "图片1中的女孩在海边奔跑，镜头跟随",
            "model": "doubao-seedance-2-0-fast-260128",
            "generation_category": "reference_to_video",
            "images": [
                {
                    "source_type": "url",
                    "url": "https://cdn.example.com/seedance/girl.png",
                    "role": "reference_image",
                }
            ],
            "resolution": "720p",
            "duration": "5",
            "contains_real_person_material": False,
        },
        "inputs.contains_real_person_material": False,
        "idempotency_key": key,
        "accept_external_cost_risk": False,
    }


async def submit(http: httpx.AsyncClient, who: Customer, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/workflow/run/submit", headers=who.headers, json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _run_view(http: httpx.AsyncClient, who: Customer, view: str, run_id: str) -> Any:
    response = await http.get(
        f"/workflow/run/{view}", params={"run_order_id": run_id}, headers=who.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def execution(http: httpx.AsyncClient, who: Customer, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = await _run_view(http, who, "execution", run_id)
    return data


async def info(http: httpx.AsyncClient, who: Customer, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = await _run_view(http, who, "info", run_id)
    return data


def local(http: httpx.AsyncClient, url: str) -> str:
    """A signed link as this test reaches it (links name the public base URL)."""
    origin = f"{http.base_url.scheme}://{http.base_url.netloc.decode()}"
    return url.replace(PUBLIC_BASE, origin)


def assert_signed_link(runtime: Runtime, url: str) -> None:
    """Media handed to Ark: wfrun's signed /files link (local store, SQLite suite) or the S3
    store's presigned URL (PostgreSQL suite)."""
    if runtime.db.is_sqlite:
        assert url.startswith(PUBLIC_BASE + "/files/")
        assert "signature=" in url
    else:
        assert "X-Amz-Signature=" in url


def tokens_cost(tokens: int, yuan_per_million: str) -> int:
    return tokens * parse_amount(yuan_per_million) // 1_000_000


async def test_chenyu_example_runs_to_succeeded_with_video_quote_and_usage_settlement(
    runtime, http, standin: ArkStandin
):
    published = await publish(runtime)
    alice = await customer(runtime, balance="20")
    body = chenyu_example(published.workflow_id, published.revision_id, "chenyu-example-1")
    quote = await http.post(
        "/workflow/run/quote",
        headers=alice.headers,
        json={k: v for k, v in body.items() if k != "idempotency_key"},
    )
    assert quote.status_code == 200, quote.text
    # adaptive ratio: quoted at 720p's largest frame (4:3, 1112×834), 5 s = 121 frames
    quoted_tokens = -(-1112 * 834 * 121 // 1024)
    expected_quote = parse_amount("0.01") + tokens_cost(quoted_tokens, "37")
    assert quote.json()["data"]["quote_amount"] == format_amount(expected_quote)
    submitted = await submit(http, alice, body)
    assert submitted["quote_amount"] == format_amount(expected_quote)
    assert submitted["freeze_status"] == "frozen"
    run_id = submitted["run_order_id"]
    assert await account_balance(runtime, alice.account_id) == (
        parse_amount("20") - expected_quote,
        expected_quote,
    )

    await drain(runtime)

    view = await execution(http, alice, run_id)
    assert view["status"] == "succeeded", view["error"]
    assert view["progress_percent"] == 100
    events = [e["event_type"] for e in view["logs"]]
    assert "submitted" in events
    async with httpx.AsyncClient() as plain:
        video = await plain.get(local(http, view["outputs"]["video"]))
    assert video.status_code == 200
    summary = read_mp4(video.content)
    assert (summary.width, summary.height) == (1280, 720)  # the stand-in renders adaptive 16:9

    billed = await info(http, alice, run_id)
    usage_tokens = 108_900  # Ark's usage for 1280×720, 5 s (seedance-ark.md §1.6)
    external = tokens_cost(usage_tokens, "37")
    final = parse_amount("0.01") + external
    assert billed["external_model_cost"] == format_amount(external)
    assert billed["compute_cost"] == format_amount(parse_amount("0.01"))
    assert billed["final_amount"] == format_amount(final)
    assert billed["released_amount"] == format_amount(expected_quote - final)
    assert billed["settlement_status"] == "settled"
    async with runtime.db.transaction() as conn:  # the provider's outcome ended it, once
        changes = [e.event_type for e in await outbox.for_run(conn, run_id)]
    assert changes == ["run.queued", "run.started", "run.succeeded"]
    assert await account_balance(runtime, alice.account_id) == (parse_amount("20") - final, 0)

    [create] = standin.creates()
    sent = create.json()
    assert sent["model"] == FAST
    assert (sent["resolution"], sent["ratio"], sent["duration"]) == ("720p", "adaptive", 5)
    assert sent["content"] == [
        {"type": "text", "text": "图片1中的女孩在海边奔跑，镜头跟随"},
        {
            "type": "image_url",
            "image_url": {"url": "https://cdn.example.com/seedance/girl.png"},
            "role": "reference_image",
        },
    ]
    assert sent["safety_identifier"].startswith("wfrun-")
    assert not standin.calls("POST", "/")  # URL path: no material registration


async def upload(http: httpx.AsyncClient, who: Customer, data: bytes, name: str) -> str:
    response = await http.post(
        "/assets",
        headers=who.headers,
        files={"file": (name, data, "image/png")},
        data={"media_type": "image"},
    )
    assert response.status_code == 200, response.text
    uri: str = response.json()["data"]["asset_uri"]
    return uri


def _inputs(asset_uri: str, real_person: bool) -> dict[str, Any]:
    return {
        "prompt": "图片1和图片2中的人物对视，音频1作为背景音乐",
        "images": [asset_uri, {"uri": "https://cdn.example.com/p2.png", "role": "reference_image"}],
        "audios": ["https://cdn.example.com/music.mp3"],
        "duration": 4,
        "contains_real_person_material": real_person,
    }


@pytest.mark.parametrize("real_person", [False, True], ids=["url-path", "real-person-path"])
async def test_real_person_material_is_registered_and_other_media_go_as_urls(
    runtime, http, standin: ArkStandin, person_group: str, real_person: bool
):
    published = await publish(runtime)
    alice = await customer(runtime, balance="20")
    asset_uri = await upload(http, alice, png_bytes(400, 400, (200, 100, 50)), "face.png")
    body = {
        "workflow_id": published.workflow_id,
        "idempotency_key": "rp",
        "inputs": _inputs(asset_uri, real_person),
    }
    run_id = (await submit(http, alice, body))["run_order_id"]
    await drain(runtime)
    view = await execution(http, alice, run_id)
    assert view["status"] == "succeeded", view["error"]

    [create] = standin.creates()
    urls = [item[item["type"]]["url"] for item in create.json()["content"][1:]]
    roles = [item["role"] for item in create.json()["content"][1:]]
    assert roles == ["reference_image", "reference_image", "reference_audio"]
    registrations = [r for r in standin.calls("POST", "/") if "Action=CreateAsset" in r.query]
    assert urls[2] == "https://cdn.example.com/music.mp3"  # audio never registered (§4.1)
    if not real_person:
        assert registrations == []
        assert_signed_link(runtime, urls[0])
        assert urls[1] == "https://cdn.example.com/p2.png"
        return
    # both images registered into the verified person's group, referenced as asset://
    assert [r.json()["AssetType"] for r in registrations] == ["Image", "Image"]
    assert {r.json()["GroupId"] for r in registrations} == {person_group}
    registered = [r.json()["URL"] for r in registrations]
    assert registered[1] == "https://cdn.example.com/p2.png"
    assert_signed_link(runtime, registered[0])
    assert urls[0].startswith("asset://asset-")
    assert urls[1].startswith("asset://asset-")
    for request in registrations:  # V4-signed with the AK, never the Ark API key
        assert "Credential=AKTESTSTANDIN/" in request.headers["authorization"]


async def drain_retries(runtime: Runtime) -> None:
    """Drain, again while a run waits for its (short) transient-retry delay."""

    async def drained() -> bool:
        await drain(runtime)
        async with runtime.db.transaction() as conn:
            open_jobs = (
                await conn.execute(
                    select(func.count()).where(jobs.c.status.in_(["todo", "doing", "tracking"]))
                )
            ).scalar_one()
        return bool(open_jobs == 0)

    await until(drained, what="every job to be drained", interval=0.05)


async def _run_to_end(
    runtime: Runtime, http: httpx.AsyncClient, inputs: dict[str, Any], **package: Any
) -> tuple[Customer, dict[str, Any], dict[str, Any]]:
    published = await publish(runtime, **package)
    alice = await customer(runtime, balance="20")
    body = {"workflow_id": published.workflow_id, "idempotency_key": "k", "inputs": inputs}
    run_id = (await submit(http, alice, body))["run_order_id"]
    await drain_retries(runtime)
    return alice, await execution(http, alice, run_id), await info(http, alice, run_id)


async def _assert_released(runtime: Runtime, alice: Customer, billed: dict[str, Any]) -> None:
    assert billed["freeze_status"] == "released"
    assert billed["final_amount"] == format_amount(0)
    assert billed["released_amount"] == billed["quote_amount"]
    assert await account_balance(runtime, alice.account_id) == (parse_amount("20"), 0)


PLAIN = {"prompt": "一只小猫对着镜头打哈欠", "generation_category": "text_to_video"}


@pytest.mark.parametrize(
    ("setup", "inputs", "code", "status"),
    [
        pytest.param(
            lambda s: s.fail_next_create(400, "InvalidParameter.Ratio", "bad ratio"),
            PLAIN,
            "PROVIDER_REJECTED",
            400,
            id="upstream-rejects-create",
        ),
        pytest.param(
            lambda s: s.sensitive_inputs.update(
                {"https://cdn.example.com/bad.png": "InputImageSensitiveContentDetected"}
            ),
            {"prompt": "x", "images": ["https://cdn.example.com/bad.png"]},
            "CONTENT_SAFETY_REJECTED",
            400,
            id="input-content-safety",
        ),
        pytest.param(
            lambda s: s.next_task(TaskPlan(fail_code="OutputVideoSensitiveContentDetected")),
            PLAIN,
            "CONTENT_SAFETY_REJECTED",
            422,
            id="output-content-safety",
        ),
        pytest.param(
            lambda s: s.real_face_urls.add("https://cdn.example.com/face.jpg"),
            {"prompt": "图片1", "images": ["https://cdn.example.com/face.jpg"]},
            "CONTENT_REAL_PERSON_DETECTED",
            400,
            id="real-face-without-registration",
        ),
        pytest.param(
            lambda s: s.next_task(TaskPlan(fail_code="InternalServiceError", fail_message="x")),
            PLAIN,
            "ENGINE_EXECUTION_FAILED",
            500,
            id="upstream-task-fails",
        ),
        pytest.param(
            lambda s: s.fail_next_create(403, "AccessDenied", "model not allowed"),
            PLAIN,
            "PROVIDER_UNAVAILABLE",
            503,
            id="provider-refuses-account",
        ),
        pytest.param(
            lambda s: s.asset_failures.update(
                {"https://cdn.example.com/me.jpg": ("InvalidParameter.FaceMismatch", "no match")}
            ),
            {
                "prompt": "图片1",
                "images": ["https://cdn.example.com/me.jpg"],
                "contains_real_person_material": True,
            },
            "REAL_PERSON_REGISTRATION_FAILED",
            400,
            id="registration-fails",
        ),
    ],
)
async def test_upstream_failures_release_the_freeze_once(
    runtime, http, standin: ArkStandin, setup, inputs, code, status
):
    setup(standin)
    alice, view, billed = await _run_to_end(runtime, http, inputs)
    assert view["status"] == "failed"
    assert view["error"]["engine_code"] == code, view["error"]
    assert view["error"]["status_code"] == status
    assert view["error"]["detail"]
    assert billed["error_code"] == code
    await _assert_released(runtime, alice, billed)


async def test_a_task_still_queued_at_the_time_limit_is_cancelled_and_released(
    runtime, http, standin: ArkStandin
):
    standin.next_task(TaskPlan(hold_queued=True))
    alice, view, billed = await _run_to_end(runtime, http, PLAIN, timeout_seconds=1)
    assert view["error"]["engine_code"] == "ENGINE_TIMEOUT", view["error"]
    assert "still queued after 1 s" in view["error"]["detail"]
    [task] = standin.tasks.values()
    assert standin.status_of(task.id) == "cancelled"
    await _assert_released(runtime, alice, billed)


async def test_a_task_rendering_past_the_time_limit_is_settled_by_its_result(
    runtime, http, standin: ArkStandin
):
    """Ark cannot cancel a running task and will bill it, so wfrun does not release and
    forget it: it notes the overtime and settles by the result."""
    standin.next_task(TaskPlan(hold_running=True))
    published = await publish(runtime, timeout_seconds=1)
    alice = await customer(runtime, balance="20")
    body = {"workflow_id": published.workflow_id, "idempotency_key": "ot", "inputs": PLAIN}
    run_id = (await submit(http, alice, body))["run_order_id"]
    await dispatch_only(runtime)
    [task] = standin.live_tasks()
    assert runtime.seedance is not None
    tracker = Tracker(runtime.seedance)

    async def overtime_noted() -> bool:
        await tracker.tick()
        logs = (await execution(http, alice, run_id))["logs"]
        return any("time limit of 1 s passed" in e["message"] for e in logs)

    await until(overtime_noted, what="the overtime to be noted", interval=0.05)
    assert standin.status_of(task.id) == "running"
    assert standin.calls("DELETE", f"{TASKS}/{task.id}") == []
    standin.release(task.id, running_s=0.0)
    await drain_retries(runtime)
    billed = await info(http, alice, run_id)
    assert billed["run_status"] == "succeeded"
    assert billed["settlement_status"] == "settled"


async def test_expired_upstream_task_fails_as_timeout(runtime, http, standin: ArkStandin):
    published = await publish(runtime)
    alice = await customer(runtime, balance="20")
    standin.next_task(TaskPlan(hold_queued=True))
    body = {"workflow_id": published.workflow_id, "idempotency_key": "e", "inputs": PLAIN}
    run_id = (await submit(http, alice, body))["run_order_id"]
    await dispatch_only(runtime)
    [task] = standin.live_tasks()
    standin.expire(task.id)
    await drain(runtime)
    view = await execution(http, alice, run_id)
    assert view["error"]["engine_code"] == "ENGINE_TIMEOUT"
    await _assert_released(runtime, alice, await info(http, alice, run_id))


@pytest.mark.parametrize(
    "trouble",
    [
        lambda s: s.drop_next_create_response(),
        lambda s: s.fail_next_create(500, "InternalServiceError", "boom"),
        lambda s: s.fail_next_create(429, "ServerOverloaded", "busy"),
    ],
    ids=["lost-response", "server-error", "rate-limited"],
)
async def test_create_troubles_never_make_two_billable_tasks(
    runtime, http, standin: ArkStandin, trouble
):
    trouble(standin)
    _alice, view, billed = await _run_to_end(runtime, http, PLAIN)
    assert view["status"] == "succeeded", view["error"]
    assert len(standin.live_tasks()) == 1  # exactly one task exists upstream
    async with runtime.db.transaction() as conn:
        run = await find_run(conn, billed["run_order_id"])
    assert run is not None
    assert run.provider_task_id == standin.live_tasks()[0].id
    assert billed["settlement_status"] == "settled"


async def test_seedance_workflow_is_refused_at_submit_without_an_ark_key(
    runtime, http, standin: ArkStandin
):
    published = await publish(runtime)
    alice = await customer(runtime, balance="20")
    runtime.seedance = None  # as on a server without seedance.ark_api_key
    response = await http.post(
        "/workflow/run/submit",
        headers=alice.headers,
        json={"workflow_id": published.workflow_id, "idempotency_key": "n", "inputs": PLAIN},
    )
    assert response.status_code == 503
    assert response.json()["data"]["error"]["engine_code"] == "PROVIDER_NOT_CONFIGURED"
    assert await account_balance(runtime, alice.account_id) == (parse_amount("20"), 0)
    assert standin.creates() == []


@pytest.mark.parametrize(
    ("inputs", "detail"),
    [
        (
            {
                "prompt": "x",
                "images": ["https://a.test/1.png"],
                "first_frame": "https://a.test/f.png",
            },
            "cannot be combined with first_frame/last_frame",
        ),
        ({"prompt": "x", "videos": [data_uri(MP4, "video/mp4")]}, "Ark takes no base64 video"),
        ({"prompt": "x", "duration": "20"}, "duration must be <= 15"),
        ({"prompt": "x", "audios": ["https://a.test/a.mp3"]}, "need at least one reference"),
        (
            {"prompt": "x", "generation_category": "reference_to_video"},
            "'reference_to_video' does not match the media given",
        ),
    ],
)
async def test_bad_seedance_inputs_are_400_and_change_nothing(
    runtime, http, standin: ArkStandin, inputs, detail
):
    published = await publish(runtime)
    alice = await customer(runtime, balance="20")
    response = await http.post(
        "/workflow/run/submit",
        headers=alice.headers,
        json={"workflow_id": published.workflow_id, "idempotency_key": "b", "inputs": inputs},
    )
    assert response.status_code == 400, response.text
    error = response.json()["data"]["error"]
    assert error["engine_code"] == "INVALID_WORKFLOW_INPUT"
    assert detail in error["detail"]
    assert await account_balance(runtime, alice.account_id) == (parse_amount("20"), 0)
    assert standin.creates() == []


def _tune(runtime: Runtime, **changes: Any) -> None:
    """Change the running server's Seedance settings (as a restart with new config would)."""
    assert runtime.seedance is not None
    settings = runtime.seedance.settings.model_copy(update=changes)
    runtime.seedance = dataclasses.replace(runtime.seedance, settings=settings)


async def test_arks_callback_makes_the_tracker_check_at_once(runtime, http, standin):
    _tune(runtime, callback_base_url=PUBLIC_BASE, poll_min_seconds=600, poll_max_seconds=600)
    published = await publish(runtime)
    alice = await customer(runtime, balance="20")
    body = {"workflow_id": published.workflow_id, "idempotency_key": "cb", "inputs": PLAIN}
    run_id = (await submit(http, alice, body))["run_order_id"]
    await dispatch_only(runtime)
    [create] = standin.creates()
    callback = create.json()["callback_url"]
    assert callback.startswith(f"{PUBLIC_BASE}/provider/ark/callback/{run_id}?expires=")
    [task] = standin.live_tasks()
    # the task succeeds upstream; the next check is 10 min away
    await until_true(lambda: standin.status_of(task.id) == "succeeded", what="the task to succeed")
    assert runtime.seedance is not None
    tracker = Tracker(runtime.seedance)
    assert await tracker.tick() == 0
    async with httpx.AsyncClient() as plain:
        forged = await plain.post(
            re.sub(r"signature=\w+", "signature=" + "0" * 64, local(http, callback))
        )
        assert forged.status_code == 403
        assert forged.json()["data"]["error"]["engine_code"] == "SIGNED_URL_INVALID"
        ark_says = {"id": task.id, "status": "succeeded"}  # §1.3: same shape as GET
        accepted = await plain.post(local(http, callback), json=ark_says)
    assert accepted.status_code == 200, accepted.text
    assert await tracker.tick() == 1
    assert (await execution(http, alice, run_id))["status"] == "succeeded"


async def test_a_worker_dying_between_create_and_record_leaves_one_task(runtime, http, standin):
    """The dying worker created the task but never recorded it; its successor finds the task
    in Ark's list (model, user, expiry fingerprint, time) and adopts it instead of creating a
    second billable one."""
    published = await publish(runtime)
    alice = await customer(runtime, balance="20")
    body = {"workflow_id": published.workflow_id, "idempotency_key": "die", "inputs": PLAIN}
    run_id = (await submit(http, alice, body))["run_order_id"]
    doomed = Worker(runtime)
    await doomed.register()
    # its lease has lapsed when granted: whatever it does next, it is dead to the queue
    claim = await claims.claim_next(runtime.db, worker_id=doomed.id, lease=timedelta(seconds=-1))
    assert not isinstance(claim, str)
    assert runtime.seedance is not None
    deps = runtime.seedance
    video = seedance_worker.request_of(claim)
    urls, _ = await seedance_worker.hand_off(deps, claim, video, [])
    arguments = ark_create_arguments(
        video,
        urls=urls,
        safety_identifier=seedance_worker.safety_identifier(claim.run.account_id),
        expires_after=seedance_worker.expires_after(claim),
    )
    await provider_runs.begin_create(runtime.db, claim)
    created = await deps.ark.create(arguments)
    # ... and the process dies here: no record, no park, no heartbeat.
    await drain_retries(runtime)
    view = await execution(http, alice, run_id)
    assert view["status"] == "succeeded", view["error"]
    assert [t.id for t in standin.live_tasks()] == [created]
    assert len(standin.creates()) == 1
    assert any("re-dispatched" in e["message"] for e in view["logs"])


async def _dispatch_then_cancel(
    runtime: Runtime, http: httpx.AsyncClient
) -> tuple[Customer, dict[str, Any]]:
    """Submit, let one worker dispatch it, cancel through the API (the run is running), then
    drain; returns the customer and the run's billing view."""
    published = await publish(runtime)
    alice = await customer(runtime, balance="20")
    body = {"workflow_id": published.workflow_id, "idempotency_key": "c", "inputs": PLAIN}
    run_id = (await submit(http, alice, body))["run_order_id"]
    await dispatch_only(runtime)
    assert (await execution(http, alice, run_id))["status"] == "running"
    reply = await http.post(
        "/workflow/run/cancel", headers=alice.headers, json={"run_order_id": run_id}
    )
    assert reply.json()["data"]["cancel_outcome"] == "cancel_requested"
    await drain_retries(runtime)
    return alice, await info(http, alice, run_id)


async def test_workflow_cancel_of_a_seedance_run_cancels_upstream(runtime, http, standin):
    standin.next_task(TaskPlan(hold_queued=True))
    alice, billed = await _dispatch_then_cancel(runtime, http)
    [task] = standin.live_tasks()
    assert billed["run_status"] == "cancelled"
    assert standin.status_of(task.id) == "cancelled"
    await _assert_released(runtime, alice, billed)


async def test_inline_media_are_staged_for_ark_and_removed_after_the_run(runtime, http, standin):
    published = await publish(runtime)
    alice = await customer(runtime, balance="20")
    image = data_uri(png_bytes(320, 320, (1, 2, 3)))
    inputs = {"prompt": "图片1", "images": [image]}
    body = {"workflow_id": published.workflow_id, "idempotency_key": "inline", "inputs": inputs}
    run_id = (await submit(http, alice, body))["run_order_id"]
    await drain_retries(runtime)
    assert (await execution(http, alice, run_id))["status"] == "succeeded"
    [create] = standin.creates()
    url = create.json()["content"][1]["image_url"]["url"]
    assert_signed_link(runtime, url)
    key = f"runs/{run_id}/inputs/0.png"
    assert not await runtime.storage.exists(key)


async def test_the_embedded_demo_includes_the_seedance_workflow_when_ark_is_configured(
    runtime, http, tmp_path
):
    demo = await ensure_demo(runtime.db, tmp_path / "demo", with_seedance=True)
    assert demo.api_key is not None
    headers = {"Authorization": f"Bearer {demo.api_key}"}
    listed = (await http.get("/workflow/market/list", headers=headers)).json()["data"]
    seedance_item = next(i for i in listed["items"] if "seedance" in i["tags"])
    detail = await http.get(
        "/workflow/market/info",
        params={"workflow_id": seedance_item["workflow_id"]},
        headers=headers,
    )
    data = detail.json()["data"]
    assert data["may_incur_external_model_cost"] is True
    # the default request's quote: 0.01 fee + ⌈1112×834×121/1024⌉ tokens × 37 CNY/M
    assert data["quote_amount"] == "4.06471900"
    keys = [p["key"] for p in data["editable_parameter_manifest"]]
    assert {"prompt", "images", "resolution", "duration", "generation_category"} <= set(keys)
    assert [o["key"] for o in data["candidate_output_manifest"]] == ["video"]


async def test_a_burst_beyond_arks_concurrency_waits_instead_of_failing(runtime, http, standin):
    """§1.8: Ark answers 429 QuotaExceeded when too many tasks are active; runs wait for room
    (no attempt used) and all succeed, each with exactly one task."""
    standin.max_active_tasks = 1
    published = await publish(runtime)
    alice = await customer(runtime, balance="20")
    run_ids = []
    for i in range(3):
        body = {
            "workflow_id": published.workflow_id,
            "idempotency_key": f"burst{i}",
            "inputs": PLAIN,
        }
        run_ids.append((await submit(http, alice, body))["run_order_id"])
    await drain_retries(runtime)
    for run_id in run_ids:
        view = await execution(http, alice, run_id)
        assert view["status"] == "succeeded", view["error"]
    assert len(standin.live_tasks()) == 3
    assert len(standin.creates()) > 3  # some creates were refused with 429 and retried
    waits = [e for r in run_ids for e in (await execution(http, alice, r))["logs"]]
    assert any(e["event_type"] == "waiting" and "QuotaExceeded" in e["message"] for e in waits)


async def test_an_engine_busy_past_the_time_limit_fails_and_releases(runtime, http, standin):
    standin.fail_next_create(429, "ServerOverloaded", "no capacity", times=10_000)
    alice, view, billed = await _run_to_end(runtime, http, PLAIN, timeout_seconds=1)
    assert view["error"]["engine_code"] == "ENGINE_UNAVAILABLE", view["error"]
    assert "busy past the run's time limit" in view["error"]["detail"]
    assert standin.live_tasks() == []
    await _assert_released(runtime, alice, billed)


async def test_a_package_can_sell_tokens_at_its_own_price(runtime, http, standin):
    pricing = demo_package()["pricing"] | {
        "token_prices": {FAST: {"per_million": "60", "per_million_with_video": "40"}}
    }
    inputs = PLAIN | {"ratio": "16:9"}
    _alice, view, billed = await _run_to_end(runtime, http, inputs, pricing=pricing)
    assert view["status"] == "succeeded", view["error"]
    external = tokens_cost(108_900, "60")  # Ark's usage at the package's price, not the server's
    assert billed["external_model_cost"] == format_amount(external)
    assert billed["quote_amount"] == format_amount(parse_amount("0.01") + external)
    assert billed["released_amount"] == format_amount(0)


async def test_seedance_packages_cannot_price_by_time(runtime):
    owner = await operator(runtime)
    pricing = {"fixed_fee": "0.01", "price_per_second": "0.01"}
    with pytest.raises(InvalidWorkflowPackage, match="priced by Ark's tokens"):
        await catalog.import_package(
            runtime.db, owner_id=owner, document=demo_package(pricing=pricing)
        )


async def test_bad_token_prices_are_refused_at_import(runtime):
    owner = await operator(runtime)
    pricing = {"token_prices": {FAST: {"per_million": "-1", "per_million_with_video": "1"}}}
    with pytest.raises(InvalidWorkflowPackage, match="token_prices"):
        await catalog.import_package(
            runtime.db, owner_id=owner, document=demo_package(pricing=pricing)
        )


@pytest.mark.parametrize("task_exists", [True, False], ids=["lost-answer", "refused"])
async def test_cancel_after_a_create_of_unknown_outcome_finds_the_task_first(
    runtime, http, standin: ArkStandin, task_exists: bool
):
    """A create's answer was lost and Ark's list was down, so the run waits for a retry not
    knowing whether a billable task exists. A cancel then looks for the task before
    releasing: found → cancelled upstream; none → released."""
    if task_exists:
        standin.next_task(TaskPlan(hold_queued=True))
        standin.drop_next_create_response()
        standin.fail_next_list(500, "InternalServiceError", "list down")
    else:
        standin.fail_next_create(500, "InternalServiceError", "create down")
    # the attempt ends in a transient failure: the run waits for its retry when cancelled
    alice, billed = await _dispatch_then_cancel(runtime, http)
    assert billed["run_status"] == "cancelled"
    await _assert_released(runtime, alice, billed)
    if task_exists:
        [task] = standin.tasks.values()
        assert standin.status_of(task.id) == "cancelled"
        assert len(standin.creates()) == 1  # found, not created again
        logs = (await execution(http, alice, billed["run_order_id"]))["logs"]
        assert any("from an earlier attempt; cancelling it" in e["message"] for e in logs)
    else:
        assert standin.tasks == {}
