"""Per-account real-person verification (the H5 liveness route) and its use by runs."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from tests.seedance.ark_standin import ArkStandin
from tests.seedance.conftest import PUBLIC_BASE
from tests.support.factories import Customer, account_balance, customer, drain
from wfrun.domain.money import parse_amount
from wfrun.runtime import Runtime

FACE = "https://cdn.example.com/me-front.jpg"


def _origin(http: httpx.AsyncClient) -> str:
    return f"{http.base_url.scheme}://{http.base_url.netloc.decode()}"


async def verify(http: httpx.AsyncClient, who: Customer, standin: ArkStandin) -> dict[str, Any]:
    """The person opens the H5 link, passes liveness, and Ark sends their browser back."""
    started = await http.post("/real-person/verifications", headers=who.headers)
    assert started.status_code == 200, started.text
    data: dict[str, Any] = started.json()["data"]
    assert data["status"] == "pending"
    async with httpx.AsyncClient() as phone:
        h5 = await phone.get(data["h5_link"])  # the stand-in plays the person's phone
        assert h5.status_code == 302
        back = h5.headers["location"]
        assert back.startswith(
            f"{PUBLIC_BASE}/api/open/v2/real-person/verifications/{data['verification_id']}"
        )
        landing = await phone.get(back.replace(PUBLIC_BASE, _origin(http)))
    assert landing.status_code == 200
    shown = await http.get(
        f"/real-person/verifications/{data['verification_id']}", headers=who.headers
    )
    result: dict[str, Any] = shown.json()["data"]
    return result


def _without_default_group(runtime: Runtime) -> None:
    seedance = runtime.settings.seedance.model_copy(update={"real_person_group_id": None})
    runtime.settings = runtime.settings.model_copy(update={"seedance": seedance})


def video(key: str) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "inputs": {
            "model": "doubao-seedance-2-0-fast-260128",
            "prompt": "图片1中的人物微笑",
            "images": [FACE],
            "contains_real_person_material": True,
        },
    }


async def test_an_accounts_verified_person_group_receives_its_real_person_material(
    runtime, http, standin: ArkStandin, person_group: str
):
    _without_default_group(runtime)
    alice = await customer(runtime, balance="20")
    refused = await http.post("/model-runs/videos", headers=alice.headers, json=video("a"))
    assert refused.status_code == 503
    error = refused.json()["data"]["error"]
    assert error["engine_code"] == "REAL_PERSON_REGISTRATION_UNAVAILABLE"
    assert "POST /real-person/verifications" in error["detail"]
    assert await account_balance(runtime, alice.account_id) == (parse_amount("20"), 0)

    verification = await verify(http, alice, standin)
    assert verification["status"] == "verified"
    group = verification["group_id"]
    assert group.startswith("group-")
    assert group != person_group
    assert standin.groups[group].group_type == "LivenessFace"

    accepted = await http.post("/model-runs/videos", headers=alice.headers, json=video("b"))
    assert accepted.status_code == 200, accepted.text
    await drain(runtime)
    info = await http.get(
        "/model-runs/info",
        params={"run_id": accepted.json()["data"]["run_id"]},
        headers=alice.headers,
    )
    assert info.json()["data"]["status"] == "succeeded", info.json()["data"]["error"]
    [registered] = [r for r in standin.calls("POST", "/") if "Action=CreateAsset" in r.query]
    assert registered.json()["GroupId"] == group
    assert registered.json()["URL"] == FACE


async def test_failed_liveness_and_replayed_callbacks_change_nothing(
    runtime, http, standin: ArkStandin
):
    standin.liveness_result_code = 10001
    alice = await customer(runtime, balance="20")
    failed = await verify(http, alice, standin)
    assert (failed["status"], failed["group_id"]) == ("failed", None)
    assert failed["error"] == "resultCode=10001"
    # a forged or replayed redirect cannot turn it into a verified one
    forged = await http.get(
        f"/real-person/verifications/{failed['verification_id']}/callback",
        params={"bytedToken": "made-up", "resultCode": 10000},
    )
    assert forged.status_code == 200
    shown = await http.get(
        f"/real-person/verifications/{failed['verification_id']}", headers=alice.headers
    )
    assert shown.json()["data"]["status"] == "failed"


async def test_verifications_are_private_to_their_account(runtime, http, standin):
    alice = await customer(runtime, balance="20")
    bob = await customer(runtime, balance="20", name="bob")
    mine = (await http.post("/real-person/verifications", headers=alice.headers)).json()["data"]
    peek = await http.get(
        f"/real-person/verifications/{mine['verification_id']}", headers=bob.headers
    )
    assert peek.status_code == 404
    assert peek.json()["data"]["error"]["engine_code"] == "VERIFICATION_NOT_FOUND"


async def test_verification_needs_the_control_plane(runtime, http, standin):
    assert runtime.seedance is not None
    runtime.seedance = dataclasses.replace(runtime.seedance, materials=None)  # no AK/SK
    alice = await customer(runtime, balance="20")
    response = await http.post("/real-person/verifications", headers=alice.headers)
    assert response.status_code == 503
    detail = response.json()["data"]["error"]["detail"]
    assert "seedance.access_key_id" in detail
