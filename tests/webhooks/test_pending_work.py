"""The webhook loop looks at what waits in one read before doing any of it (issue 17): an idle
round is one statement — no transaction on PostgreSQL, no write lock on SQLite — and each
kind of work it finds is seen until done."""

from __future__ import annotations

import httpx

from tests.support.factories import customer, drain
from tests.support.statements import counting
from tests.webhooks.support import add_endpoint, deliveries, ok, quick_workflow, submit
from wfrun.db.webhook_pending import Pending
from wfrun.fetch.sender import SafeSender
from wfrun.runtime import Runtime
from wfrun.services import webhook_delivery, webhook_progress
from wfrun.workers.webhooks import WebhookDelivery

IDLE_ROUND = {"postgresql": 1, "sqlite": 3}
"""One statement; SQLite reads in a (read) transaction: BEGIN, the statement, COMMIT."""


async def test_an_idle_round_is_one_read(runtime: Runtime) -> None:
    loop = WebhookDelivery.from_runtime(runtime)
    sender = SafeSender(loop.policy)
    try:
        assert await loop.round(sender) is False  # warm: the statement's first use
        async with counting(runtime.db) as trips:
            assert await loop.round(sender) is False
    finally:
        await sender.aclose()
    assert len(trips.statements) == 1, trips.explain()
    assert trips.round_trips == IDLE_ROUND[runtime.db.dialect], trips.explain()


async def test_each_kind_of_waiting_work_is_seen_until_done(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    alice = await customer(runtime, balance="10")
    await add_endpoint(http, alice, "http://127.0.0.1:9/hook", ["run.queued"])
    workflow_id = await quick_workflow(runtime)
    loop = WebhookDelivery.from_runtime(runtime)
    assert await webhook_delivery.pending(runtime.db) == Pending(False, False, False)
    assert (await submit(http, alice, workflow_id, "one")).status_code == 200
    assert await webhook_delivery.pending(runtime.db) == Pending(True, False, False)
    assert await webhook_delivery.fan_out(runtime.db, loop.render) == 1  # run.queued
    assert await webhook_delivery.pending(runtime.db) == Pending(False, False, True)
    [claimed] = await webhook_delivery.claim(runtime.db, loop.box, 10, lease_seconds=60)
    assert claimed.delivery.event_type == "run.queued"
    assert await webhook_delivery.pending(runtime.db) == Pending(False, False, False)
    await drain(runtime)  # the run's log lines, run.started and run.succeeded
    assert await webhook_delivery.pending(runtime.db) == Pending(True, True, False)
    assert await webhook_delivery.fan_out(runtime.db, loop.render) == 2  # no subscriber
    assert await webhook_delivery.pending(runtime.db) == Pending(False, True, False)
    assert await webhook_progress.fan_out_progress(runtime.db, loop.render) == 0
    assert await webhook_delivery.pending(runtime.db) == Pending(False, False, False)


UNHEARD_ROUND = {"postgresql": 5, "sqlite": 5}
"""The look, then one statement each: mark the rows nobody hears, move the low-water mark,
look for rows left (none), move the progress cursor past rows nobody hears."""


async def test_changes_nobody_hears_are_handled_without_reading_them(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    alice, bob = await customer(runtime, balance="10"), await customer(runtime, balance="10")
    workflow_id = await quick_workflow(runtime)
    # alice's endpoints hear nothing: one deleted, one disabled
    gone = await add_endpoint(http, alice, "http://127.0.0.1:9/gone", ["run.progress"])
    body = {"endpoint_id": gone["endpoint_id"]}
    ok(await http.post("/webhooks/endpoints/delete", json=body, headers=alice.headers))
    off = await add_endpoint(http, alice, "http://127.0.0.1:9/off", ["run.progress"])
    body = {"endpoint_id": off["endpoint_id"], "enabled": False}
    ok(await http.post("/webhooks/endpoints/update", json=body, headers=alice.headers))
    loop = WebhookDelivery.from_runtime(runtime)
    sender = SafeSender(loop.policy)
    try:
        for key in ("warm", "measured"):  # the first round creates the cursors
            assert (await submit(http, alice, workflow_id, key)).status_code == 200
            await drain(runtime)
            async with counting(runtime.db) as trips:
                assert await loop.round(sender) is False
        assert await webhook_delivery.pending(runtime.db) == Pending(False, False, False)
        assert len(trips.statements) == UNHEARD_ROUND[runtime.db.dialect], trips.explain()
        assert await deliveries(http, alice) == []
        # bob listens to progress only: his run's rows are read and delivered as before
        await add_endpoint(http, bob, "http://127.0.0.1:9/hook", ["run.progress"])
        run_id = ok(await submit(http, bob, workflow_id, "bob"))["run_order_id"]
        await drain(runtime)
    finally:
        await sender.aclose()
    assert await webhook_delivery.fan_out(runtime.db, loop.render) == 3  # queued, started, ended
    assert await webhook_progress.fan_out_progress(runtime.db, loop.render) > 0
    assert await webhook_delivery.pending(runtime.db) == Pending(False, False, True)
    sent = await deliveries(http, bob, run_order_id=run_id)
    assert sent
    assert {d["event_type"] for d in sent} == {"run.progress"}


async def test_a_backlog_nobody_hears_is_marked_a_batch_at_a_time(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    alice = await customer(runtime, balance="10")
    workflow_id = await quick_workflow(runtime)
    loop = WebhookDelivery.from_runtime(runtime)
    for key in ("a", "b", "c"):  # three run.queued rows
        assert (await submit(http, alice, workflow_id, key)).status_code == 200
    full = await webhook_delivery.fan_out(runtime.db, loop.render, batch=200, unheard_batch=2)
    assert full == 200  # a full batch: look again at once
    assert await webhook_delivery.pending(runtime.db) == Pending(True, False, False)
    assert await webhook_delivery.fan_out(runtime.db, loop.render, unheard_batch=2) == 0
    assert await webhook_delivery.pending(runtime.db) == Pending(False, False, False)
