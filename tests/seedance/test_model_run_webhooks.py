"""Model runs send ``model_run.*`` webhooks whose ``data`` is the ``/model-runs/info`` view,
to endpoints and to the task's ``callback_url`` (Ark stand-in, receivers on loopback)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.seedance.ark_standin import ArkStandin
from tests.seedance.test_model_runs import model_info, post, video_body
from tests.support.api import running_worker
from tests.support.factories import customer
from tests.support.receiver import Receiver, running_receiver
from tests.support.waiting import until
from tests.webhooks.conftest import FAST
from tests.webhooks.support import add_endpoint, ok
from wfrun.runtime import Runtime


@pytest.fixture
def settings(settings: Any) -> Any:
    return settings.model_copy(update={"webhooks": FAST})


def _types(receiver: Receiver) -> set[str]:
    return {json.loads(r.body)["type"] for r in receiver.successes.values()}


async def test_model_runs_send_model_run_changes(
    runtime: Runtime, http: httpx.AsyncClient, standin: ArkStandin
):
    alice = await customer(runtime, balance="20")
    secret = ok(await http.get("/webhooks/secret", headers=alice.headers))["secret"]
    wanted = ["model_run.queued", "model_run.succeeded", "run.succeeded"]
    with running_receiver() as hook, running_receiver() as callback:
        endpoint = await add_endpoint(http, alice, hook.url, wanted)
        body = {**video_body("v1"), "callback_url": callback.url}
        run_id = (await post(http, alice, "/model-runs/videos", body))["data"]["run_id"]
        async with running_worker(runtime):

            async def ended() -> bool:
                done = {"model_run.queued", "model_run.succeeded"}
                return _types(hook) == done and "model_run.succeeded" in _types(callback)

            await until(ended, what="model_run changes at the endpoint and the callback")
    info = await model_info(http, alice, run_id)
    for item in hook.received:
        payload = Webhook(endpoint["secret"]).verify(item.body, item.headers)
        assert payload["data"]["run_id"] == run_id
        assert set(payload["data"]) == set(info)
    assert _types(callback) == {"model_run.queued", "model_run.started", "model_run.succeeded"}
    final = [Webhook(secret).verify(r.body, r.headers) for r in callback.received]
    assert {p["data"]["status"] for p in final if p["type"] == "model_run.succeeded"} == {
        "succeeded"
    }
