"""Webhook delivery end to end: a real receiver on loopback, a worker delivering, both DBs.
Signatures are checked with the ``standardwebhooks`` package (not wfrun's code)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.api import running_worker, wait_status
from tests.support.factories import customer, operator, publish_package, sleepy_package
from tests.support.receiver import Receiver, running_receiver
from tests.support.waiting import until
from tests.webhooks.support import (
    add_endpoint,
    deliveries,
    ok,
    quick_workflow,
    settled,
    submit,
)
from wfrun.runtime import Runtime

CHANGES = {"run.queued", "run.started", "run.succeeded"}
README = Path(__file__).parents[2] / "README.md"


def readme_verify() -> Callable[[str, dict[str, str], bytes], bool]:
    """The README's by-hand verification, run as printed (a check written from the spec)."""
    text = README.read_text().split("<!-- webhook-verify:start -->", 1)[1]
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 (our own README)
    verify: Callable[[str, dict[str, str], bytes], bool] = namespace["verify"]
    return verify


def _types(receiver: Receiver) -> set[str]:
    return {json.loads(r.body)["type"] for r in receiver.successes.values()}


async def test_an_endpoint_gets_every_change_signed_and_carrying_run_info(
    runtime: Runtime, http: httpx.AsyncClient
):
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    with running_receiver() as receiver:
        endpoint = await add_endpoint(http, alice, receiver.url)
        assert endpoint["secret"].startswith("whsec_")
        run_id = ok(await submit(http, alice, workflow, "k1"))["run_order_id"]
        async with running_worker(runtime):
            await wait_status(http, alice, run_id)

            async def all_changes() -> bool:
                return _types(receiver) == CHANGES

            await until(all_changes, what="queued, started and succeeded at the receiver")
    info = ok(
        await http.get("/workflow/run/info", params={"run_order_id": run_id}, headers=alice.headers)
    )
    verifier = Webhook(endpoint["secret"])
    for item in receiver.received:
        payload = verifier.verify(item.body, item.headers)
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["data"]["run_order_id"] == run_id
        assert set(payload["data"]) == set(info)
        assert item.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(item.body, item.headers)
    by_hand = readme_verify()
    assert all(by_hand(endpoint["secret"], r.headers, r.body) for r in receiver.received)
    assert not by_hand(endpoint["secret"], item.headers, item.body + b" ")
    succeeded = [r for r in receiver.received if json.loads(r.body)["type"] == "run.succeeded"]
    assert json.loads(succeeded[0].body)["data"]["run_status"] == "succeeded"
    logged = await settled(http, alice, endpoint_id=endpoint["endpoint_id"])
    assert {d["event_type"] for d in logged} == CHANGES
    assert all(d["status"] == "succeeded" and d["attempt_count"] == 1 for d in logged)
    listed = ok(await http.get("/webhooks/endpoints", headers=alice.headers))["items"]
    assert [e["endpoint_id"] for e in listed] == [endpoint["endpoint_id"]]
    assert "secret" not in listed[0]


async def test_a_receiver_failing_three_times_gets_the_event_once_after_four_attempts(
    runtime: Runtime, http: httpx.AsyncClient
):
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    with running_receiver(failures_first=3) as receiver:
        endpoint = await add_endpoint(http, alice, receiver.url, ["run.succeeded"])
        run_id = ok(await submit(http, alice, workflow, "k1"))["run_order_id"]
        async with running_worker(runtime):

            async def delivered() -> bool:
                return receiver.accepted == 1

            await until(delivered, what="the success after three failures")
            logged = await settled(http, alice, run_order_id=run_id)
    assert len(receiver.received) == 4
    assert {r.webhook_id for r in receiver.received} == set(receiver.successes)
    assert _types(receiver) == {"run.succeeded"}
    [delivery] = logged
    assert delivery["endpoint_id"] == endpoint["endpoint_id"]
    assert delivery["status"] == "succeeded"
    assert [a["http_status"] for a in delivery["attempts"]] == [500, 500, 500, 200]
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3, 4]
    first = delivery["attempts"][0]
    assert first["response_excerpt"].startswith("receiver says no")
    assert len(first["response_excerpt"].encode()) <= 1024
    assert all(a["latency_ms"] >= 0 for a in delivery["attempts"])
    assert delivery["webhook_id"] == receiver.received[0].webhook_id
    assert delivery["next_retry_at"] is None


async def test_retries_stop_when_the_schedule_is_spent(runtime: Runtime, http: httpx.AsyncClient):
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    with running_receiver(failures_first=100) as receiver:
        await add_endpoint(http, alice, receiver.url, ["run.succeeded"])
        run_id = ok(await submit(http, alice, workflow, "k1"))["run_order_id"]
        async with running_worker(runtime):

            async def failed() -> bool:
                logged = await deliveries(http, alice, run_order_id=run_id)
                return bool(logged) and logged[0]["status"] == "failed"

            await until(failed, what="the delivery to fail for good")
    [delivery] = await deliveries(http, alice, run_order_id=run_id)
    assert delivery["attempt_count"] == 5  # the first try and the 4 retries of the schedule
    assert delivery["error"] == "receiver answered HTTP 500"
    assert len(receiver.received) == 5


async def test_resend_delivers_again_with_the_same_webhook_id(
    runtime: Runtime, http: httpx.AsyncClient
):
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    with running_receiver() as receiver:
        await add_endpoint(http, alice, receiver.url, ["run.succeeded"])
        run_id = ok(await submit(http, alice, workflow, "k1"))["run_order_id"]
        async with running_worker(runtime):

            async def received(count: int) -> bool:
                return len(receiver.received) == count

            await until(lambda: received(1), what="the first delivery")
            [delivery] = await deliveries(http, alice, run_order_id=run_id)
            body = {"delivery_id": delivery["delivery_id"]}
            resent = ok(
                await http.post("/webhooks/deliveries/resend", json=body, headers=alice.headers)
            )
            assert resent["status"] in ("pending", "sending", "succeeded")
            await until(lambda: received(2), what="the resend")
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id == delivery["webhook_id"]
    assert first.body == second.body
    [after] = await settled(http, alice, run_order_id=run_id)
    assert after["attempt_count"] == 2


async def test_a_rotated_secret_signs_with_both_for_a_while(
    runtime: Runtime, http: httpx.AsyncClient
):
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    with running_receiver() as receiver:
        old = await add_endpoint(http, alice, receiver.url, ["run.succeeded"])
        body = {"endpoint_id": old["endpoint_id"]}
        new = ok(
            await http.post("/webhooks/endpoints/rotate-secret", json=body, headers=alice.headers)
        )
        assert new["secret"] != old["secret"]
        assert new["previous_secret_expires_at"]
        ok(await submit(http, alice, workflow, "k1"))
        async with running_worker(runtime):

            async def received() -> bool:
                return len(receiver.received) == 1

            await until(received, what="a delivery after the rotation")
    [item] = receiver.received
    assert len(item.headers["webhook-signature"].split(" ")) == 2
    Webhook(old["secret"]).verify(item.body, item.headers)
    Webhook(new["secret"]).verify(item.body, item.headers)


async def test_a_callback_url_is_signed_with_the_accounts_default_secret(
    runtime: Runtime, http: httpx.AsyncClient
):
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    secret = ok(await http.get("/webhooks/secret", headers=alice.headers))["secret"]
    assert ok(await http.get("/webhooks/secret", headers=alice.headers))["secret"] == secret
    with running_receiver() as receiver:
        response = await submit(http, alice, workflow, "k1", callback_url=receiver.url)
        run_id = ok(response)["run_order_id"]
        async with running_worker(runtime):

            async def all_changes() -> bool:
                return _types(receiver) == CHANGES

            await until(all_changes, what="the run's changes at its callback_url")
    for item in receiver.received:
        assert Webhook(secret).verify(item.body, item.headers)["data"]["run_order_id"] == run_id
    logged = await deliveries(http, alice, run_order_id=run_id)
    assert {d["target"] for d in logged} == {"callback"}


async def test_progress_is_opt_in_and_throttled(runtime: Runtime, http: httpx.AsyncClient):
    owner = await operator(runtime)
    workflow = await publish_package(runtime, owner, sleepy_package(seconds=0.6))
    alice = await customer(runtime)
    with running_receiver() as receiver, running_receiver() as quiet:
        await add_endpoint(http, alice, receiver.url, ["run.progress", "run.succeeded"])
        await add_endpoint(http, alice, quiet.url)  # the default set: no progress
        run_id = ok(await submit(http, alice, workflow, "k1"))["run_order_id"]
        async with running_worker(runtime):

            async def ended() -> bool:
                return bool(receiver.of_type("run.succeeded")) and bool(
                    quiet.of_type("run.succeeded")
                )

            await until(ended, what="the run's ending at both receivers")
        execution = ok(
            await http.get(
                "/workflow/run/execution", params={"run_order_id": run_id}, headers=alice.headers
            )
        )
    progress = [json.loads(r.body) for r in receiver.of_type("run.progress")]
    assert progress, "no progress delivered"
    assert quiet.of_type("run.progress") == []
    assert all(p["data"]["run_order_id"] == run_id for p in progress)
    assert all(0 <= p["data"]["progress"]["percent"] <= 100 for p in progress)
    stamps = sorted(datetime.fromisoformat(p["timestamp"]) for p in progress)
    assert all(b - a >= timedelta(milliseconds=500) for a, b in itertools.pairwise(stamps))
    rows = [e for e in execution["logs"] if e.get("progress_percent") is not None]
    assert len(progress) < len(rows)  # throttled: some progress rows were not sent
