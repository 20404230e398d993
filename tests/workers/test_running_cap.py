"""The running-run cap through the HTTP API and a real worker: an account at its cap (the
server's ``limits.max_running_runs`` or the account's override) has its next run wait in the
queue — never refused, its ``queue_info.reason`` saying so — while other accounts' runs
start past it; once its running run ends, the waiting one starts and succeeds.

Runs go to a ComfyUI stand-in that holds the first prompt until the test lets it go, so the
test, not a clock, decides when a run ends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.api.test_queue import publish, sleepy_comfy, submit
from tests.comfyui.helpers import FAST
from tests.support import api
from tests.support.factories import (
    account_balance,
    customer,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.money import cny
from tests.support.pg_relay import Relay
from tests.support.waiting import until, until_true
from wfrun.db.database import Database
from wfrun.engines.comfyui import ComfyUIEngine
from wfrun.queue import quotas
from wfrun.runtime import Runtime
from wfrun.services import claims, instances, limits
from wfrun.services.claims import engine_prompt_id

SLEEP = "2"
CAPPED = "the account is at its running-runs limit (1 of 1 running)"


@pytest.fixture
async def rt(runtime: Runtime) -> Runtime:
    await runtime.engines["comfyui"].aclose()  # type: ignore[attr-defined]
    runtime.engines["comfyui"] = ComfyUIEngine("wfrun-running-cap", settings=FAST)
    return runtime


@pytest.mark.parametrize("how", ["default", "override"])
async def test_an_account_at_its_running_cap_waits_its_turn_then_runs(rt, http, standin, how):
    await instances.add_instance(rt.db, url=standin.base_url, capacity=3, labels={})
    workflow_id = await publish(rt, sleepy_comfy())
    alice, bob = await customer(rt, name="alice"), await customer(rt, name="bob")
    if how == "default":
        rt.settings.limits.max_running_runs = 1
    else:  # the claim reads the override from the database; the API, from its cache
        changes = {"max_running_runs": 1}
        await limits.set_overrides(rt.db, rt.settings.limits, alice.account_id, changes)
        await until_true(lambda: alice.account_id in rt.limits.overrides, what="the cache")
    await standin.hold(running=True, node=SLEEP)
    async with api.running_worker(rt):
        first = await submit(http, alice, workflow_id, "a1")
        await standin.wait_held(engine_prompt_id(first))
        second = await submit(http, alice, workflow_id, "a2")
        other = await submit(http, bob, workflow_id, "b1")
        await standin.wait_pending(engine_prompt_id(other))  # bob's run started past alice's
        probe = await claims.claim_next(
            rt.db,
            worker_id="probe",
            lease=timedelta(seconds=5),
            running_cap=rt.settings.limits.max_running_runs,
        )
        assert probe == "empty"  # alice's waiting run is passed by, though slots are free
        view = await api.execution(http, alice, second)
        assert view["status"] == "queued"
        assert view["queue_info"]["position"] == 1
        assert view["queue_info"]["reason"] == CAPPED
        await standin.release()
        ended = [
            await api.wait_status(http, who, r)
            for who, r in ((alice, first), (alice, second), (bob, other))
        ]
    assert [v["status"] for v in ended] == ["succeeded"] * 3
    charged = [
        cny(v["final_amount"]) for v in [await api.info(http, alice, r) for r in (first, second)]
    ]
    assert await account_balance(rt, alice.account_id) == (cny("10") - sum(charged), 0)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_claims_at_once_do_not_both_take_an_accounts_last_running_place(
    runtime, http, database_url
):
    """Worker A has claimed alice's first run and not committed yet (the relay holds its
    COMMIT) when worker B claims: B must not start alice's second run past her cap of 1."""
    runtime.settings.limits.max_running_runs = 1
    workflow_id = await publish_package(runtime, await operator(runtime), sleepy_package())
    alice = await customer(runtime, name="alice")
    for key in ("a1", "a2"):
        await api.submit(http, alice, workflow_id, key)
    relay = Relay(database_url)
    db_a = Database(await relay.start())
    lease = timedelta(seconds=60)
    try:
        relay.hold = lambda sent: b"COMMIT" in sent
        first = asyncio.create_task(
            claims.claim_next(db_a, worker_id="a", lease=lease, running_cap=1)
        )
        await until_true(lambda: relay.held, what="worker A's claim to wait on its COMMIT")
        second = asyncio.create_task(
            claims.claim_next(runtime.db, worker_id="b", lease=lease, running_cap=1)
        )
        await until(lambda: _done_or_waiting(second, runtime), what="worker B's claim")
        relay.release()
        claimed_a, claimed_b = await first, await second
    finally:
        await db_a.dispose()
        await relay.stop()
    assert not isinstance(claimed_a, str)
    assert claimed_b == "empty"
    async with runtime.db.transaction() as conn:
        assert await quotas.running_count(conn, alice.account_id) == 1


async def _done_or_waiting(task: asyncio.Task[object], rt: Runtime) -> bool:
    if task.done():
        return True
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with rt.db.transaction() as conn:
        return bool((await conn.execute(query)).scalar_one())
