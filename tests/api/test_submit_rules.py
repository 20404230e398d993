"""Submit: idempotency, concurrency, balance, and precise errors that change nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support.factories import (
    Customer,
    customer,
    data_uri,
    money_snapshot,
    operator,
    png_bytes,
    publish_demo,
)
from wfrun.domain.money import parse_amount
from wfrun.runtime import Runtime
from wfrun.services import accounts


async def _setup(runtime: Runtime, balance: str = "10") -> tuple[Customer, str, str]:
    owner = await operator(runtime)
    published = await publish_demo(runtime, owner)
    alice = await customer(runtime, balance=balance)
    return alice, published.workflow_id, published.revision_id


def _body(workflow_id: str, key: str = "k", **inputs: Any) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "idempotency_key": key,
        "inputs": {"n1_image": data_uri(png_bytes()), **inputs},
    }


async def test_replay_returns_the_original_run_and_freezes_once(runtime, http):
    alice, workflow_id, _ = await _setup(runtime)
    body = _body(workflow_id, "same")
    first = (await http.post("/workflow/run/submit", json=body, headers=alice.headers)).json()
    before = await money_snapshot(runtime)
    second = (await http.post("/workflow/run/submit", json=body, headers=alice.headers)).json()
    assert second["data"]["run_order_id"] == first["data"]["run_order_id"]
    assert first["data"]["idempotent_replay"] is False
    assert second["data"]["idempotent_replay"] is True
    assert await money_snapshot(runtime) == before


async def test_same_key_with_a_different_request_is_422_and_changes_nothing(runtime, http):
    alice, workflow_id, _ = await _setup(runtime)
    await http.post("/workflow/run/submit", json=_body(workflow_id, "k1"), headers=alice.headers)
    before = await money_snapshot(runtime)
    response = await http.post(
        "/workflow/run/submit", json=_body(workflow_id, "k1", n2_width=64), headers=alice.headers
    )
    assert response.status_code == 422
    error = response.json()["data"]["error"]
    assert error["engine_code"] == "IDEMPOTENCY_KEY_REUSED"
    assert "'k1'" in error["detail"]
    assert await money_snapshot(runtime) == before


async def test_keys_are_scoped_per_account(runtime, http):
    alice, workflow_id, _ = await _setup(runtime)
    bob = await customer(runtime, name="bob")
    a = (
        await http.post(
            "/workflow/run/submit", json=_body(workflow_id, "shared"), headers=alice.headers
        )
    ).json()["data"]
    b = (
        await http.post(
            "/workflow/run/submit", json=_body(workflow_id, "shared"), headers=bob.headers
        )
    ).json()["data"]
    assert a["run_order_id"] != b["run_order_id"]
    assert b["idempotent_replay"] is False
    other = await http.get(
        "/workflow/run/info", params={"run_order_id": a["run_order_id"]}, headers=bob.headers
    )
    assert other.status_code == 404


async def test_fifty_concurrent_identical_submits_create_one_run(runtime, http):
    alice, workflow_id, _ = await _setup(runtime)
    body = _body(workflow_id, "burst")
    responses = await asyncio.gather(
        *(http.post("/workflow/run/submit", json=body, headers=alice.headers) for _ in range(50))
    )
    data = [r.json()["data"] for r in responses]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert len({d["run_order_id"] for d in data}) == 1
    assert sum(1 for d in data if not d["idempotent_replay"]) == 1
    snapshot = await money_snapshot(runtime)
    assert snapshot["counts"]["runs"] == 1
    assert snapshot["counts"]["freezes"] == 1


async def test_fifty_distinct_submits_against_a_balance_for_k(runtime, http):
    k = 7
    alice, workflow_id, _ = await _setup(runtime, balance=str(0.03 * k))
    responses = await asyncio.gather(
        *(
            http.post(
                "/workflow/run/submit", json=_body(workflow_id, f"d{i}"), headers=alice.headers
            )
            for i in range(50)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * k + [402] * (50 - k)
    refused = next(r for r in responses if r.status_code == 402).json()
    assert refused["data"]["error"]["engine_code"] == "INSUFFICIENT_BALANCE"
    snapshot = await money_snapshot(runtime)
    assert snapshot["counts"]["runs"] == k
    account = await accounts.get_account(runtime.db, alice.account_id)
    assert (account.available, account.frozen) == (0, parse_amount("0.03") * k)


async def test_a_refused_submit_can_be_retried_with_the_same_key(runtime, http):
    alice, workflow_id, _ = await _setup(runtime, balance="0.01")
    body = _body(workflow_id, "retry-me")
    assert (
        await http.post("/workflow/run/submit", json=body, headers=alice.headers)
    ).status_code == 402
    await accounts.top_up(runtime.db, account_id=alice.account_id, amount=parse_amount("1"))
    retried = await http.post("/workflow/run/submit", json=body, headers=alice.headers)
    assert retried.status_code == 200
    assert retried.json()["data"]["idempotent_replay"] is False


async def test_quote_validates_and_prices_without_side_effects(runtime, http):
    alice, workflow_id, revision_id = await _setup(runtime)
    before = await money_snapshot(runtime)
    body = _body(workflow_id)
    del body["idempotency_key"]
    response = await http.post("/workflow/run/quote", json=body, headers=alice.headers)
    data = response.json()["data"]
    assert data["quote_amount"] == "0.03000000"
    assert data["revision_id"] == revision_id
    assert data["breakdown"]["fixed_fee"] == "0.01000000"
    bad = await http.post("/workflow/run/quote", json={**body, "inputs": {}}, headers=alice.headers)
    assert bad.status_code == 400
    assert await money_snapshot(runtime) == before


BAD_INPUTS = [
    ({"nope": 1}, "input nope is not a parameter of this workflow"),
    ({"n1_image": None}, "input n1_image is required"),
    ({"n2_width": "wide"}, "input n2_width must be an integer, got string 'wide'"),
    ({"n2_width": 12.5}, "input n2_width must be an integer, got number 12.5"),
    ({"n2_width": 4096}, "input n2_width must be <= 2048 (got 4096)"),
    ({"n2_width": 2}, "input n2_width must be >= 16 (got 2)"),
    (
        {"n2_upscale_method": "fancy"},
        (
            "input n2_upscale_method must be one of 'nearest-exact', "
            "'bilinear', 'area', 'bicubic', 'lanczos' (got 'fancy')"
        ),
    ),
    ({"n6_value": 5}, "input n6_value must be a string, got integer 5"),
    (
        {"n1_image": "not a file"},
        "input n1_image must be an http(s) URL, asset:// URI or data: URI",
    ),
    (
        {"n1_image": "data:image/png;base64,@@@"},
        "input n1_image data URI payload is not valid base64",
    ),
    (
        {"n1_image": data_uri(b"plain text, not an image", "image/png")},
        "input n1_image must be image data; its bytes are not a known format",
    ),
    (
        {"n1_image": data_uri(png_bytes(), "image/jpeg")},
        "input n1_image declares image/jpeg but its bytes are image/png",
    ),
    ({"n1_image": [data_uri(png_bytes())]}, "input n1_image takes one image, not a list"),
]


@pytest.mark.parametrize(("inputs", "detail"), BAD_INPUTS)
async def test_bad_inputs_get_a_precise_400_and_change_nothing(runtime, http, inputs, detail):
    alice, workflow_id, _ = await _setup(runtime)
    before = await money_snapshot(runtime)
    submitted = {"n1_image": data_uri(png_bytes()), **inputs}
    if submitted["n1_image"] is None:
        del submitted["n1_image"]  # "missing", not "null"
    body = {"workflow_id": workflow_id, "idempotency_key": "bad", "inputs": submitted}
    response = await http.post("/workflow/run/submit", json=body, headers=alice.headers)
    assert response.status_code == 400
    assert response.json() == {
        "code": 1,
        "msg": "Workflow input content is invalid.",
        "data": {
            "error": {
                "reason": "Workflow input content is invalid.",
                "detail": detail,
                "engine_code": "INVALID_WORKFLOW_INPUT",
                "status_code": 400,
            }
        },
    }
    assert await money_snapshot(runtime) == before


async def _error(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["data"]["error"]
    assert error["status_code"] == response.status_code
    assert response.json()["msg"] == error["reason"]
    return response.status_code, error["engine_code"], error["detail"]


async def test_request_level_errors(runtime, http):
    alice, workflow_id, _ = await _setup(runtime)
    other = await operator(runtime)
    foreign = await publish_demo(runtime, other, slug="other-demo")
    before = await money_snapshot(runtime)
    cases = [
        (
            await http.post(
                "/workflow/run/submit", json=_body("wf_00000000000000000000"), headers=alice.headers
            ),
            (404, "WORKFLOW_NOT_FOUND", "workflow wf_00000000000000000000 does not exist"),
        ),
        (
            await http.post(
                "/workflow/run/submit",
                json={**_body(workflow_id), "revision_id": foreign.revision_id},
                headers=alice.headers,
            ),
            (
                404,
                "REVISION_NOT_FOUND",
                f"revision {foreign.revision_id} is not a revision of workflow {workflow_id}",
            ),
        ),
        (
            await http.post(
                "/workflow/run/submit",
                json={k: v for k, v in _body(workflow_id).items() if k != "idempotency_key"},
                headers=alice.headers,
            ),
            (
                400,
                "IDEMPOTENCY_KEY_REQUIRED",
                "idempotency_key is required (1-255 printable characters)",
            ),
        ),
        (
            await http.post(
                "/workflow/run/submit", json=_body(workflow_id, "x" * 256), headers=alice.headers
            ),
            (400, "IDEMPOTENCY_KEY_REQUIRED", "idempotency_key must be 1-255 printable characters"),
        ),
        (
            await http.post("/workflow/run/submit", json=_body(workflow_id)),
            (401, "API_KEY_MISSING", "send the API key as 'Authorization: Bearer <key>'"),
        ),
        (
            await http.post(
                "/workflow/run/submit",
                json=_body(workflow_id),
                headers={"Authorization": "Bearer wfk_wrong"},
            ),
            (401, "API_KEY_INVALID", "the API key is not recognised or has been revoked"),
        ),
        (
            await http.post(
                "/workflow/run/submit",
                json={**_body(workflow_id), "surprise": 1},
                headers=alice.headers,
            ),
            (400, "INVALID_PARAMETER", "unknown field(s) in body: surprise"),
        ),
        (
            await http.post(
                "/workflow/run/submit",
                content=b"{not json",
                headers={**alice.headers, "content-type": "application/json"},
            ),
            (400, "INVALID_PARAMETER", None),
        ),
        (
            await http.get("/workflow/run/list", params={"page_size": 500}, headers=alice.headers),
            (400, "INVALID_PARAMETER", "page_size: Input should be less than or equal to 100"),
        ),
        (
            await http.get(
                "/workflow/run/info",
                params={"run_order_id": "wfrun_missing"},
                headers=alice.headers,
            ),
            (404, "RUN_NOT_FOUND", "run wfrun_missing does not exist"),
        ),
    ]
    for response, (status, code, detail) in cases:
        got = await _error(response)
        assert got[:2] == (status, code), response.text
        if detail is not None:
            assert got[2] == detail
    assert await money_snapshot(runtime) == before


async def test_revoked_key_is_refused(runtime, http):
    alice, _, _ = await _setup(runtime)
    keys = await accounts.list_keys(runtime.db, alice.account_id)
    await accounts.revoke_key(runtime.db, keys[0].id)
    response = await http.get("/balance/info", headers=alice.headers)
    assert (await _error(response))[:2] == (401, "API_KEY_INVALID")


async def test_real_person_flag_at_top_level_is_accepted(runtime, http):
    alice, workflow_id, _ = await _setup(runtime)
    body = {**_body(workflow_id), "inputs.contains_real_person_material": False}
    response = await http.post("/workflow/run/submit", json=body, headers=alice.headers)
    assert response.status_code == 200, response.text
