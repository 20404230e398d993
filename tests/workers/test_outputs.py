"""A promised media output that the engine did not produce fails the run and charges nothing."""

from __future__ import annotations

from tests.support.factories import (
    account_balance,
    customer,
    drain,
    operator,
    publish_package,
    sleepy_package,
)
from wfrun.domain.money import parse_amount
from wfrun.services import run_views, runs
from wfrun.services.accounts import Principal


async def test_missing_media_output_fails_and_releases(runtime):
    package = sleepy_package(seconds=0)
    package["graph"]["5"] = {"class_type": "PrimitiveString", "inputs": {"value": "x"}}
    package["outputs"].append({"key": "poster", "type": "image", "bind": {"node": "5"}})
    workflow_id = await publish_package(runtime, await operator(runtime), package)
    alice = await customer(runtime, balance="1")
    principal = Principal(alice.account_id, "key_t", "alice")
    request = runs.RunRequest(workflow_id, None, {}, idempotency_key="o")
    run_id = (await runs.submit_run(runtime.db, principal, request, runtime.policy)).run.id
    await drain(runtime)
    run = (await run_views.get_execution(runtime.db, principal, run_id, lease_seconds=5)).run
    assert run.status == "failed"
    assert run.error_code == "ENGINE_OUTPUT_MISSING"
    assert run.error_detail == "output poster (node 5) produced no file"
    assert await account_balance(runtime, alice.account_id) == (parse_amount("1"), 0)
