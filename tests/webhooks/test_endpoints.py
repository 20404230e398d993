"""Webhook endpoints through the API: tenancy, the address policy at the door, updates,
disabling after a failing streak and re-enabling, and the operator CLI."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.support.api import running_worker
from tests.support.factories import Customer, account_balance, customer
from tests.support.receiver import running_receiver
from tests.support.waiting import until
from tests.webhooks.conftest import FAST
from tests.webhooks.support import (
    add_endpoint,
    deliveries,
    ok,
    quick_workflow,
    settled,
    submit,
)
from wfrun.runtime import Runtime


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["data"]["error"]
    assert error["engine_code"] == code
    return error


async def post(http: httpx.AsyncClient, who: Customer, path: str, body: Any) -> httpx.Response:
    return await http.post(path, json=body, headers=who.headers)


async def test_another_accounts_endpoints_and_deliveries_are_not_found(
    runtime: Runtime, http: httpx.AsyncClient
):
    workflow = await quick_workflow(runtime)
    alice, bob = await customer(runtime, name="alice"), await customer(runtime, name="bob")
    with running_receiver() as receiver:
        endpoint = await add_endpoint(http, alice, receiver.url, ["run.queued"])
        run_id = ok(await submit(http, alice, workflow, "k1"))["run_order_id"]
        async with running_worker(runtime):
            await until(lambda: _received(receiver), what="alice's delivery")
    [delivery] = await deliveries(http, alice)
    theirs = {"endpoint_id": endpoint["endpoint_id"]}
    assert ok(await http.get("/webhooks/endpoints", headers=bob.headers))["items"] == []
    for path in ("update", "delete", "rotate-secret"):
        response = await post(http, bob, f"/webhooks/endpoints/{path}", theirs)
        refused(response, 404, "WEBHOOK_ENDPOINT_NOT_FOUND")
    response = await http.get("/webhooks/deliveries", params=theirs, headers=bob.headers)
    refused(response, 404, "WEBHOOK_ENDPOINT_NOT_FOUND")
    assert await deliveries(http, bob, run_order_id=run_id) == []
    response = await post(
        http, bob, "/webhooks/deliveries/resend", {"delivery_id": delivery["delivery_id"]}
    )
    refused(response, 404, "WEBHOOK_DELIVERY_NOT_FOUND")
    assert (
        ok(await http.get("/webhooks/secret", headers=bob.headers))["secret"]
        != ok(await http.get("/webhooks/secret", headers=alice.headers))["secret"]
    )
    listed = ok(await http.get("/webhooks/endpoints", headers=alice.headers))["items"]
    assert [e["endpoint_id"] for e in listed] == [endpoint["endpoint_id"]]


async def _received(receiver: Any) -> bool:
    return bool(receiver.successes)


async def test_private_receivers_are_refused_before_anything_is_frozen(
    runtime: Runtime, http: httpx.AsyncClient
):
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime, balance="5")
    before = await account_balance(runtime, alice.account_id)
    for url in ("http://10.1.2.3/hook", "http://169.254.169.254/", "http://localhost:9/x"):
        response = await submit(http, alice, workflow, "k1", callback_url=url)
        error = refused(response, 400, "INVALID_PARAMETER")
        assert error["detail"].startswith("callback_url: ")
        response = await post(http, alice, "/webhooks/endpoints", {"url": url})
        assert refused(response, 400, "INVALID_PARAMETER")["detail"].startswith("url: ")
    response = await post(
        http,
        alice,
        "/model-runs/videos",
        {"idempotency_key": "v1", "inputs": {}, "callback_url": "http://[::1]/x"},
    )
    assert refused(response, 400, "INVALID_PARAMETER")["detail"].startswith("callback_url: ")
    assert await account_balance(runtime, alice.account_id) == before
    assert ok(await http.get("/workflow/run/list", headers=alice.headers))["total"] == 0
    assert ok(await http.get("/webhooks/endpoints", headers=alice.headers))["items"] == []
    # the same key works once the URL is one the policy allows (loopback is allow-listed here)
    allowed = await submit(http, alice, workflow, "k1", callback_url="http://127.0.0.1:9/x")
    assert ok(allowed)["run_order_id"]


async def test_unknown_event_types_are_refused(runtime: Runtime, http: httpx.AsyncClient):
    alice = await customer(runtime)
    body = {"url": "http://127.0.0.1:9/x", "events": ["run.exploded"]}
    error = refused(await post(http, alice, "/webhooks/endpoints", body), 400, "INVALID_PARAMETER")
    assert "run.exploded" in error["detail"]


async def test_a_failing_endpoint_is_disabled_and_update_re_enables_it(
    runtime: Runtime, http: httpx.AsyncClient
):
    runtime.settings = runtime.settings.model_copy(
        update={"webhooks": FAST.model_copy(update={"disable_after_seconds": 0.001})}
    )
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    with running_receiver(failures_first=1000) as receiver:
        endpoint = await add_endpoint(http, alice, receiver.url, ["run.succeeded"])
        body = {"endpoint_id": endpoint["endpoint_id"]}
        ok(await submit(http, alice, workflow, "k1"))
        async with running_worker(runtime):

            async def disabled() -> bool:
                items = ok(await http.get("/webhooks/endpoints", headers=alice.headers))["items"]
                return not items[0]["enabled"]

            await until(disabled, what="the endpoint to be disabled")
            [listed] = ok(await http.get("/webhooks/endpoints", headers=alice.headers))["items"]
            assert listed["disabled_reason"].startswith("every delivery failed for")
            [waiting] = await deliveries(http, alice)
            assert waiting["status"] == "pending"
            tried = len(receiver.received)
            receiver.failures_first = 0
            updated = ok(await post(http, alice, "/webhooks/endpoints/update", body))
            assert updated["enabled"]
            assert updated["failing_since"] is None
            await until(lambda: _received(receiver), what="delivery after re-enabling")
    assert tried == 2  # the second failure ended the (tiny) grace; nothing was sent while off
    [done] = await settled(http, alice)
    assert done["status"] == "succeeded"


async def test_update_and_delete(runtime: Runtime, http: httpx.AsyncClient):
    alice = await customer(runtime)
    endpoint = await add_endpoint(http, alice, "http://127.0.0.1:9/a")
    assert "run.progress" not in endpoint["events"]
    assert "model_run.succeeded" in endpoint["events"]
    body = {
        "endpoint_id": endpoint["endpoint_id"],
        "url": "http://127.0.0.1:9/b",
        "events": ["run.failed", "run.progress"],
        "description": "changed",
    }
    changed = ok(await post(http, alice, "/webhooks/endpoints/update", body))
    assert (changed["url"], changed["events"], changed["description"]) == (
        "http://127.0.0.1:9/b",
        ["run.failed", "run.progress"],
        "changed",
    )
    assert "secret" not in changed
    body = {"endpoint_id": endpoint["endpoint_id"], "url": "http://10.0.0.1/"}
    refused(await post(http, alice, "/webhooks/endpoints/update", body), 400, "INVALID_PARAMETER")
    gone = {"endpoint_id": endpoint["endpoint_id"]}
    assert ok(await post(http, alice, "/webhooks/endpoints/delete", gone))["deleted_at"]
    assert ok(await http.get("/webhooks/endpoints", headers=alice.headers))["items"] == []
    response = await post(http, alice, "/webhooks/endpoints/delete", gone)
    refused(response, 404, "WEBHOOK_ENDPOINT_NOT_FOUND")


def test_the_operator_cli_manages_endpoints(invoke):
    account = json.loads(invoke("accounts", "create", "ops", "--json").stdout)["id"]
    added = json.loads(
        invoke(
            "webhooks", "add", account, "http://127.0.0.1:9/h", "--event", "run.failed", "--json"
        ).stdout
    )
    assert added["secret"].startswith("whsec_")
    assert added["events"] == ["run.failed"]
    endpoint_id = added["endpoint_id"]
    listed = json.loads(invoke("webhooks", "list", account, "--json").stdout)
    assert [e["endpoint_id"] for e in listed] == [endpoint_id]
    assert "secret" not in listed[0]
    rotated = json.loads(invoke("webhooks", "rotate-secret", account, endpoint_id, "--json").stdout)
    assert rotated["secret"] != added["secret"]
    off = json.loads(
        invoke("webhooks", "update", account, endpoint_id, "--disable", "--json").stdout
    )
    assert off["enabled"] is False
    on = json.loads(invoke("webhooks", "update", account, endpoint_id, "--json").stdout)
    assert on["enabled"] is True
    logged = json.loads(invoke("webhooks", "deliveries", account, "--json").stdout)
    assert logged == {"items": [], "total": 0}
    invoke("webhooks", "add", account, "http://10.0.0.1/", code=1)
    invoke("webhooks", "resend", account, "whdl_missing", code=1)
    invoke("webhooks", "delete", account, endpoint_id)
    assert json.loads(invoke("webhooks", "list", account, "--json").stdout) == []


async def test_deleting_an_endpoint_ends_its_unsent_deliveries(
    runtime: Runtime, http: httpx.AsyncClient
):
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    with running_receiver(hold=True) as receiver:
        endpoint = await add_endpoint(http, alice, receiver.url, ["run.queued"])
        ok(await submit(http, alice, workflow, "k1"))
        async with running_worker(runtime):

            async def held() -> bool:
                return receiver.holding.is_set()

            await until(held, what="the delivery in flight")
            gone = {"endpoint_id": endpoint["endpoint_id"]}
            ok(await post(http, alice, "/webhooks/endpoints/delete", gone))
            receiver.release.set()  # the attempt in flight ends; its outcome is fenced out

            async def answered() -> bool:
                return len(receiver.received) == 1

            await until(answered, what="the held request to be answered")
    [delivery] = await deliveries(http, alice)
    assert (delivery["status"], delivery["error"]) == ("failed", "endpoint deleted")
