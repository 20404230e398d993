"""The Ark stand-in driven by the official SDK (volcenginesdkarkruntime / volcenginesdkcore)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import volcenginesdkcore  # type: ignore[import-untyped]
from volcenginesdkarkruntime._exceptions import (  # type: ignore[import-untyped]
    ArkAPIConnectionError,
    ArkAuthenticationError,
    ArkBadRequestError,
    ArkNotFoundError,
    ArkRateLimitError,
)
from volcenginesdkcore.rest import ApiException  # type: ignore[import-untyped]
from volcenginesdkcore.universal import UniversalApi, UniversalInfo  # type: ignore[import-untyped]

from tests.seedance.ark_media import png_size, read_mp4
from tests.seedance.ark_standin import ArkStandin, TaskPlan
from tests.seedance.conftest import make_client
from tests.support.waiting import until_sync

SEEDANCE_2 = "doubao-seedance-2-0-260128"
FAST = "doubao-seedance-2-0-fast-260128"
TEXT = [{"type": "text", "text": "一只小猫对着镜头打哈欠"}]


def wait_terminal(ark: Any, task_id: str) -> Any:
    seen: list[Any] = []

    def ended() -> bool:
        seen.append(ark.content_generation.tasks.get(task_id=task_id))
        return seen[-1].status in ("succeeded", "failed", "expired", "cancelled")

    until_sync(ended, what=f"task {task_id} to end")
    return seen[-1]


def control_plane(standin: ArkStandin) -> Any:
    cfg = volcenginesdkcore.Configuration()
    cfg.ak, cfg.sk, cfg.region = standin.access_key, standin.secret_key, "cn-beijing"
    cfg.host, cfg.scheme = standin.host, "http"
    api = UniversalApi(volcenginesdkcore.ApiClient(cfg))

    def call(action: str, body: dict[str, Any]) -> Any:
        info = UniversalInfo(
            method="POST",
            service="ark",
            version="2024-01-01",
            action=action,
            content_type="application/json",
        )
        return api.do_call(info, body)

    return call


def error_code(exc: ApiException) -> str:
    return str(json.loads(exc.body)["ResponseMetadata"]["Error"]["Code"])


def test_create_poll_succeeds_with_usage_and_downloadable_video(standin, ark):
    standin.next_task(TaskPlan(hold_queued=True))
    created = ark.content_generation.tasks.create(
        model=SEEDANCE_2,
        content=TEXT,
        resolution="720p",
        ratio="16:9",
        duration=5,
        return_last_frame=True,
        safety_identifier="user-hash-1",
    )
    assert created.id.startswith("cgt-")
    assert ark.content_generation.tasks.get(task_id=created.id).status == "queued"
    standin.release(created.id, running_s=0.0)
    task = wait_terminal(ark, created.id)
    assert task.status == "succeeded"
    assert task.model == SEEDANCE_2
    assert (task.resolution, task.ratio, task.duration, task.framespersecond) == (
        "720p",
        "16:9",
        5,
        24,
    )
    # reference §1.6 example: 720p 16:9 5 s → 108 900 tokens; total == completion
    assert task.usage.completion_tokens == 108900 == task.usage.total_tokens
    assert task.error is None
    assert task.generate_audio is True  # §1.3 default true on 2.0
    assert "X-Tos-Expires=86400" in task.content.video_url
    video = httpx.get(task.content.video_url, timeout=5)
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    summary = read_mp4(video.content)
    assert (summary.major_brand, summary.width, summary.height) == ("isom", 1280, 720)
    assert summary.duration_ms == round(121 * 1000 / 24)
    frame = httpx.get(task.content.last_frame_url, timeout=5)
    assert png_size(frame.content) == (1280, 720)
    # §1.6: the URL stops working after 24 h
    standin.clock.advance(86400)
    assert httpx.get(task.content.video_url, timeout=5).status_code == 403
    [request] = standin.creates()
    assert request.headers["authorization"] == "Bearer test-ark-key"


def test_sdk_paths_and_list(standin, ark):
    a = ark.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    b = ark.content_generation.tasks.create(model=FAST, content=TEXT, resolution="480p")
    wait_terminal(ark, a.id)
    wait_terminal(ark, b.id)
    page = ark.content_generation.tasks.list(page_num=1, page_size=10, model=FAST)
    assert page.total == 1
    assert [t.id for t in page.items] == [b.id]
    both = ark.content_generation.tasks.list(task_ids=[a.id, b.id], status="succeeded")
    assert {t.id for t in both.items} == {a.id, b.id}
    paths = {(r.method, r.path) for r in standin.requests}
    assert ("POST", "/api/v3/contents/generations/tasks") in paths
    assert ("GET", f"/api/v3/contents/generations/tasks/{a.id}") in paths
    [listed] = [r for r in standin.calls("GET", "/api/v3/contents/generations/tasks")][-1:]
    assert parse_qs(listed.query)["filter.task_ids"] == [a.id, b.id]
    with pytest.raises(ArkBadRequestError) as info:
        ark.content_generation.tasks.list(page_size=501)
    assert info.value.code == "InvalidParameter.page_size"


def test_wrong_api_key_is_401(standin):
    client = make_client(standin, api_key="wrong")
    with pytest.raises(ArkAuthenticationError) as info:
        client.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    client.close()
    assert info.value.status_code == 401
    assert info.value.code == "AuthenticationError"
    assert "Request ID:" in info.value.body["message"]
    assert standin.live_tasks() == []


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"seed": 1}, "InvalidParameter.UnsupportedParameter"),  # §1.3 seed: not on 2.0
        ({"duration": 20}, "InvalidParameter.duration"),
        ({"resolution": "1080p", "model": FAST}, "InvalidParameter.resolution"),
        ({"service_tier": "flex"}, "InvalidParameter.UnsupportedParameter"),
        ({"execution_expires_after": 60}, "InvalidParameter.execution_expires_after"),
        ({"content": []}, "InvalidParameter.content"),
        (
            {"content": [{"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AA"}}]},
            "InvalidParameter",
        ),
        (
            {
                "content": [
                    {
                        "type": "audio_url",
                        "audio_url": {"url": "https://x.test/a.mp3"},
                        "role": "reference_audio",
                    }
                ]
            },
            "InvalidParameter",  # §1.4: audio alone is rejected
        ),
        (
            {"content": [{"type": "text", "text": "asset-20260401123823-6d4x2是美妆博主"}]},
            "InvalidParameter",  # §1.4: never write an asset ID in the prompt
        ),
    ],
)
def test_invalid_parameters_are_400(standin, ark, kwargs, code):
    args: dict[str, Any] = {"model": SEEDANCE_2, "content": TEXT, **kwargs}
    with pytest.raises(ArkBadRequestError) as info:
        ark.content_generation.tasks.create(**args)
    assert info.value.code == code
    assert standin.live_tasks() == []


def test_unknown_model_is_404(ark):
    with pytest.raises(ArkNotFoundError) as info:
        ark.content_generation.tasks.create(model="doubao-nope", content=TEXT)
    assert info.value.code == "InvalidEndpointOrModel.NotFound"


def test_real_face_input_rejected_but_own_output_trusted(standin, ark):
    face = "https://cdn.test/selfie.jpg"
    standin.real_face_urls.add(face)
    image = {"type": "image_url", "image_url": {"url": face}, "role": "reference_image"}
    with pytest.raises(ArkBadRequestError) as info:
        ark.content_generation.tasks.create(model=SEEDANCE_2, content=[*TEXT, image])
    assert info.value.code == "InputImageSensitiveContentDetected.PrivacyInformation"
    assert "content[1]' may contain real person" in info.value.message
    # §4.1 route A: this account's own Seedance output is trusted input
    first = wait_terminal(
        ark, ark.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT).id
    )
    standin.real_face_urls.add(first.content.video_url)
    video = {
        "type": "video_url",
        "video_url": {"url": first.content.video_url},
        "role": "reference_video",
    }
    chained = ark.content_generation.tasks.create(model=SEEDANCE_2, content=[*TEXT, video])
    assert wait_terminal(ark, chained.id).status == "succeeded"


def test_rate_limit_is_retried_by_sdk_and_creates_nothing(standin):
    standin.fail_next_create(429, "RateLimitExceeded.EndpointRPMExceeded")
    client = make_client(standin, max_retries=1)
    created = client.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    client.close()
    assert len(standin.creates()) == 2  # the SDK retried the 429 by itself
    assert [t.id for t in standin.live_tasks()] == [created.id]
    standin.fail_next_create(429, "QuotaExceeded", "too many queued tasks")
    strict = make_client(standin, max_retries=0)
    with pytest.raises(ArkRateLimitError) as info:
        strict.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    strict.close()
    assert info.value.code == "QuotaExceeded"


def test_max_active_tasks_gives_quota_exceeded(standin, ark):
    standin.max_active_tasks = 1
    standin.next_task(TaskPlan(hold_queued=True))
    ark.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    with pytest.raises(ArkRateLimitError) as info:
        ark.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    assert info.value.code == "QuotaExceeded"


def test_output_moderation_fails_task_without_usage(standin, ark):
    standin.next_task(TaskPlan(fail_code="OutputVideoSensitiveContentDetected"))
    created = ark.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    task = wait_terminal(ark, created.id)
    assert task.status == "failed"
    assert task.error.code == "OutputVideoSensitiveContentDetected"
    # the SDK model hides absent fields; read the wire body directly
    body = httpx.get(
        f"{standin.base_url}/contents/generations/tasks/{created.id}",
        headers={"Authorization": "Bearer test-ark-key"},
        timeout=5,
    ).json()
    assert "usage" not in body
    assert "content" not in body


def test_slow_task_expires_after_execution_expires_after(standin, ark):
    standin.next_task(TaskPlan(hold_queued=True))
    created = ark.content_generation.tasks.create(
        model=SEEDANCE_2, content=TEXT, execution_expires_after=3600
    )
    assert ark.content_generation.tasks.get(task_id=created.id).status == "queued"
    standin.clock.advance(3601)
    assert ark.content_generation.tasks.get(task_id=created.id).status == "expired"
    # the expire knob acts at once
    standin.next_task(TaskPlan(hold_queued=True))
    other = ark.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    standin.expire(other.id)
    assert ark.content_generation.tasks.get(task_id=other.id).status == "expired"


def test_cancel_queued_delete_terminal_refuse_running(standin, ark):
    standin.next_task(TaskPlan(hold_queued=True))
    queued = ark.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    ark.content_generation.tasks.delete(task_id=queued.id)
    assert ark.content_generation.tasks.get(task_id=queued.id).status == "cancelled"
    standin.clock.advance(86400)  # §1.6: cancelled records go after 24 h
    with pytest.raises(ArkNotFoundError):
        ark.content_generation.tasks.get(task_id=queued.id)

    standin.next_task(TaskPlan(queued_s=0, hold_running=True))
    running = ark.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    assert ark.content_generation.tasks.get(task_id=running.id).status == "running"
    with pytest.raises(ArkBadRequestError):
        ark.content_generation.tasks.delete(task_id=running.id)
    standin.release(running.id)
    assert wait_terminal(ark, running.id).status == "succeeded"
    ark.content_generation.tasks.delete(task_id=running.id)
    with pytest.raises(ArkNotFoundError):
        ark.content_generation.tasks.get(task_id=running.id)


def test_prompt_suffix_overrides_billed_parameters(ark):
    content = [{"type": "text", "text": "小猫打哈欠 --rs 480p --dur 4"}]
    created = ark.content_generation.tasks.create(
        model=SEEDANCE_2, content=content, resolution="720p", ratio="16:9", duration=5
    )
    task = wait_terminal(ark, created.id)
    assert (task.resolution, task.duration) == ("480p", 4)
    assert task.usage.completion_tokens == -(-864 * 496 * 97 // 1024)


def test_lost_create_response_sdk_retry_creates_a_second_billable_task(standin):
    """§3.3: the SDK retries create on connection errors; Ark has no idempotency key."""
    standin.drop_next_create_response()
    client = make_client(standin, max_retries=2)
    created = client.content_generation.tasks.create(
        model=SEEDANCE_2, content=TEXT, safety_identifier="user-hash-1"
    )
    client.close()
    creates = standin.creates()
    assert len(creates) == 2
    # each attempt carries a fresh X-Client-Request-Id: nothing lets the server deduplicate
    request_ids = {r.headers["x-client-request-id"] for r in creates}
    assert len(request_ids) == 2
    assert standin.create_counts(lambda r: r.body) == {creates[0].body: 2}
    tasks = standin.live_tasks()
    assert len(tasks) == 2
    assert created.id == tasks[1].id
    for task in tasks:
        assert wait_terminal(make_client(standin), task.id).status == "succeeded"  # both billed


def test_lost_create_response_without_retries_leaves_one_task(standin):
    standin.drop_next_create_response()
    client = make_client(standin, max_retries=0)
    with pytest.raises(ArkAPIConnectionError):
        client.content_generation.tasks.create(model=SEEDANCE_2, content=TEXT)
    assert len(standin.creates()) == 1
    [orphan] = standin.live_tasks()
    # the only way back to it is listing (by model / status / time): no client key exists
    page = client.content_generation.tasks.list(model=SEEDANCE_2)
    assert [t.id for t in page.items] == [orphan.id]
    client.close()


def test_real_person_registration_and_use(standin, ark):
    call = control_plane(standin)
    session = call("CreateVisualValidateSession", {"CallbackURL": "https://app.test/cb"})
    with pytest.raises(ApiException) as pending:
        call("GetVisualValidateResult", {"BytedToken": session["BytedToken"]})
    assert error_code(pending.value) == "InvalidParameter.BytedToken"
    # the person opens H5Link on a phone and passes liveness → redirect to CallbackURL
    redirect = httpx.get(session["H5Link"], timeout=5)
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["location"])
    assert parse_qs(location.query)["resultCode"] == ["10000"]
    result = call("GetVisualValidateResult", {"BytedToken": session["BytedToken"]})
    assert result["GroupType"] == "LivenessFace"
    with pytest.raises(ApiException):  # the token is single-use
        call("GetVisualValidateResult", {"BytedToken": session["BytedToken"]})

    face = "https://cdn.test/person-front.jpg"
    standin.real_face_urls.add(face)
    standin.hold_assets = True  # processing lasts until the test says it is done
    asset_id = call(
        "CreateAsset",
        {"GroupId": result["GroupId"], "URL": face, "AssetType": "Image", "Name": "front"},
    )["Id"]
    assert call("GetAsset", {"Id": asset_id})["Status"] == "Processing"
    image = {"type": "image_url", "image_url": {"url": f"asset://{asset_id}"}}
    reference = {**image, "role": "reference_image"}
    with pytest.raises(ArkBadRequestError):  # not Active yet
        ark.content_generation.tasks.create(model=SEEDANCE_2, content=[*TEXT, reference])
    standin.release_asset(asset_id)
    assert call("GetAsset", {"Id": asset_id})["Status"] == "Active"
    listed = call("ListAssets", {"Filter": {"GroupIds": [result["GroupId"]]}})
    assert [a["Id"] for a in listed["Items"]] == [asset_id]
    created = ark.content_generation.tasks.create(model=SEEDANCE_2, content=[*TEXT, reference])
    assert wait_terminal(ark, created.id).status == "succeeded"
    with pytest.raises(ApiException) as still_authorised:
        call("DeleteAssetGroup", {"Id": result["GroupId"]})
    assert error_code(still_authorised.value) == "InvalidParameter"


def test_failed_and_unknown_assets_are_rejected(standin, ark):
    call = control_plane(standin)
    with pytest.raises(ApiException) as liveness:
        call("CreateAssetGroup", {"Name": "p", "GroupType": "LivenessFace"})
    assert error_code(liveness.value) == "InvalidParameter.GroupType"
    group = call("CreateAssetGroup", {"Name": "virtual", "GroupType": "AIGC"})["Id"]
    bad_url = "https://cdn.test/bad.png"
    standin.asset_failures[bad_url] = ("InputImageSensitiveContentDetected.PolicyViolation", "x")
    standin.asset_processing_s = 0
    asset_id = call("CreateAsset", {"GroupId": group, "URL": bad_url, "AssetType": "Image"})["Id"]
    asset = call("GetAsset", {"Id": asset_id})
    assert asset["Status"] == "Failed"
    assert asset["Error"]["Code"] == "InputImageSensitiveContentDetected.PolicyViolation"
    for ref in (asset_id, "asset-20260101000000-nope0"):
        item = {"type": "image_url", "image_url": {"url": f"asset://{ref}"}, "role": "first_frame"}
        with pytest.raises(ArkBadRequestError) as info:
            ark.content_generation.tasks.create(model=SEEDANCE_2, content=[*TEXT, item])
        assert info.value.code == "InvalidParameter"
    standin.asset_service_activated = False
    with pytest.raises(ArkBadRequestError) as inactive:
        ark.content_generation.tasks.create(model=SEEDANCE_2, content=[*TEXT, item])
    assert "not activated the Asset Service" in inactive.value.message
    with pytest.raises(ApiException) as base64:
        call(
            "CreateAsset",
            {"GroupId": group, "URL": "data:image/png;base64,AA", "AssetType": "Image"},
        )
    assert error_code(base64.value) == "InvalidParameter.URL"


def test_control_plane_refuses_api_key_auth(standin):
    response = httpx.post(
        f"http://{standin.host}/?Action=ListAssets&Version=2024-01-01",
        json={},
        headers={"Authorization": "Bearer test-ark-key"},
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["ResponseMetadata"]["Error"]["Code"] == "SignatureDoesNotMatch"
