"""A ``wfrun worker`` SIGKILLed while it delivers a webhook loses no event: the change is in
the outbox (written with the run's status), its delivery row outlives the worker, and another
worker sends it, with the same ``webhook-id``, once the dead worker's lease lapses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.chaos.harness import Cluster, Customer, chaos_settings, submit_acknowledged
from tests.support.receiver import running_receiver
from tests.support.waiting import until_sync

HOOK_ENV = {
    "WFRUN_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.0/8"]',
    "WFRUN_WEBHOOKS__POLL_INTERVAL": "0.05",
    "WFRUN_WEBHOOKS__LEASE_SECONDS": "2",
    "WFRUN_WEBHOOKS__RETRY_SCHEDULE_SECONDS": "[0.05, 0.05, 0.05]",
}


@dataclass
class HookCluster(Cluster):
    @property
    def env(self) -> dict[str, str]:
        return super().env | HOOK_ENV


@contextmanager
def hook_cluster(fresh_url: str, tmp: Path) -> Iterator[HookCluster]:
    group = HookCluster(chaos_settings(fresh_url, tmp / "data"), tmp)
    try:
        yield group
    finally:
        group.stop_all()


def _add_endpoint(http: httpx.Client, who: Customer, url: str) -> str:
    body = {"url": url, "events": ["run.queued"]}
    headers = {"Authorization": f"Bearer {who.key}"}
    response = http.post("/webhooks/endpoints", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["endpoint_id"])


def test_a_worker_killed_mid_delivery_loses_no_event(fresh_url: str, tmp_path: Path):
    with hook_cluster(fresh_url, tmp_path) as group, running_receiver(failures_first=1) as hook:
        who = group.provision(seconds=0)
        _, url = group.serve("api", "--no-worker")
        hook.hold = True
        with httpx.Client(base_url=url, timeout=10) as http:
            endpoint_id = _add_endpoint(http, who, hook.url)
            [run_id] = submit_acknowledged(http, who, ["k1"])
            doomed, _ = group.worker("worker-doomed")
            until_sync(hook.holding.is_set, what="the doomed worker to be mid-delivery")
            doomed.kill()
            hook.hold = False
            hook.release.set()  # the held request is answered 500 into a dead socket
            group.worker("worker-2")
            until_sync(lambda: hook.successes, what="the event delivered by the second worker")
            headers = {"Authorization": f"Bearer {who.key}"}
            query = {"endpoint_id": endpoint_id}

            def recorded() -> dict[str, Any] | None:
                log = http.get("/webhooks/deliveries", params=query, headers=headers).json()
                return log if log["data"]["items"][0]["status"] == "succeeded" else None

            log = until_sync(recorded, what="the second worker to record its attempt")
    [first, second] = hook.received
    assert first.webhook_id == second.webhook_id
    assert json.loads(second.body)["data"]["run_order_id"] == run_id
    assert list(hook.successes) == [first.webhook_id]
    [delivery] = log["data"]["items"]
    assert delivery["status"] == "succeeded"
    # the dead worker's attempt was never recorded; the second worker's claim is attempt 2
    assert [(a["attempt"], a["http_status"]) for a in delivery["attempts"]] == [(2, 200)]
