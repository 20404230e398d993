"""The operator's run, refund, adjustment and workflow-retiring commands against real databases
(both dialects), with exact amounts; the books checked by ``wfrun ledger check`` and after each
test by the ``runtime`` fixture."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from tests.support import api
from tests.support.factories import (
    Customer,
    customer,
    drain,
    operator,
    publish_demo,
    sleepy_package,
)
from tests.support.money import cny
from wfrun.cli.main import cli
from wfrun.config import Settings
from wfrun.db.migrate import alembic_config, upgrade
from wfrun.db.schema import refunds
from wfrun.db.spend import key_spend
from wfrun.errors import InvalidParameter
from wfrun.runtime import Runtime
from wfrun.services import catalog
from wfrun.services import operator as operator_service
from wfrun.services.accounts import get_account


async def wfrun(settings: Settings, *args: str, code: int = 0) -> Any:
    """``wfrun ARGS --json`` in a thread (the CLI runs its own event loop); its JSON."""
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, cli, [*args, "--json"], obj=settings, catch_exceptions=False
    )
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


async def _charged_run(runtime: Runtime, http: httpx.AsyncClient) -> tuple[str, str]:
    """A customer (10 CNY) and their succeeded run, charged exactly 0.01 CNY (its fixed fee)."""
    who = await customer(runtime, balance="10")
    owner = await operator(runtime)
    package = sleepy_package(seconds=0, price_per_second="0") | {"visibility": "public"}
    imported = await catalog.import_package(
        runtime.db, owner_id=owner, document=package, publish=True
    )
    run = await api.submit(http, who, imported.workflow_id, "refund-me")
    await drain(runtime)
    assert (await api.info(http, who, run["run_order_id"]))["final_amount"] == "0.01000000"
    return who.account_id, run["run_order_id"]


async def _available(runtime: Runtime, account_id: str) -> int:
    return (await get_account(runtime.db, account_id)).available


async def test_refunds_are_compensating_entries_up_to_the_charge(runtime, settings, http):
    account, run = await _charged_run(runtime, http)
    assert await _available(runtime, account) == cny("9.99")

    first = await wfrun(settings, "runs", "refund", run, "--amount", "0.004", "--memo", "t-1")
    assert (first["amount"], first["charged"], first["refunded"]) == (
        "0.00400000",
        "0.01000000",
        "0.00400000",
    )
    assert (first["available"], first["replay"]) == ("9.99400000", False)
    again = await wfrun(settings, "runs", "refund", run, "--amount", "0.004", "--memo", "t-1")
    assert (again["id"], again["replay"], again["available"]) == (first["id"], True, "9.99400000")

    other = await wfrun(
        settings, "runs", "refund", run, "--amount", "0.001", "--memo", "t-1", code=1
    )
    assert other["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    over = await wfrun(
        settings, "runs", "refund", run, "--amount", "0.007", "--memo", "t-2", code=1
    )
    assert over["error"] == {
        "code": "INVALID_PARAMETER",
        "detail": f"a refund of 0.00700000 CNY exceeds what is left of run {run}: charged "
        "0.01000000, refunded 0.00400000, at most 0.00600000 more",
    }
    assert await _available(runtime, account) == cny("9.994")

    rest = await wfrun(settings, "runs", "refund", run, "--memo", "t-2")
    assert (rest["amount"], rest["refunded"], rest["available"]) == (
        "0.00600000",
        "0.01000000",
        "10.00000000",
    )
    full = await wfrun(settings, "runs", "refund", run, "--memo", "t-3", code=1)
    assert full["error"]["detail"] == f"run {run} was refunded in full already (0.01000000 CNY)"

    shown = await wfrun(settings, "runs", "show", run)
    assert (shown["status"], shown["final_amount"]) == ("succeeded", "0.01000000")
    assert [(r["amount"], r["memo"]) for r in shown["refunds"]] == [
        ("0.00400000", "t-1"),
        ("0.00600000", "t-2"),
    ]
    assert shown["log"], "the log tail is shown"
    assert await wfrun(settings, "ledger", "check") == {"ok": True, "problems": []}
    assert await _available(runtime, account) == cny("10")


async def test_cancel_lists_and_refuses_refunding_what_charged_nothing(runtime, settings, http):
    who = await customer(runtime, balance="10")
    owner = await operator(runtime)
    package = sleepy_package(seconds=0) | {"visibility": "public"}
    imported = await catalog.import_package(
        runtime.db, owner_id=owner, document=package, publish=True
    )
    run = (await api.submit(http, who, imported.workflow_id, "k1"))["run_order_id"]  # no worker

    listed = await wfrun(settings, "runs", "list", "--account", who.account_id)
    assert [(r["id"], r["status"]) for r in listed] == [(run, "queued")]
    cancelled = await wfrun(settings, "runs", "cancel", run)
    assert cancelled == {"run_order_id": run, "outcome": "cancelled", "status": "cancelled"}
    assert await _available(runtime, who.account_id) == cny("10")
    again = await wfrun(settings, "runs", "cancel", run)
    assert again["outcome"] == "already_cancelled"

    refused = await wfrun(settings, "runs", "refund", run, "--memo", "why", code=1)
    assert refused["error"] == {
        "code": "INVALID_PARAMETER",
        "detail": f"run {run} charged nothing; there is nothing to refund",
    }
    assert await wfrun(settings, "runs", "list", "--status", "queued") == []
    by_status = await wfrun(settings, "runs", "list", "--status", "cancelled", "--limit", "1")
    assert [r["id"] for r in by_status] == [run]
    by_workflow = await wfrun(settings, "runs", "list", "--workflow", imported.workflow_id)
    assert [r["id"] for r in by_workflow] == [run]
    assert await wfrun(settings, "runs", "list", "--workflow", "wf_other") == []
    missing = await wfrun(settings, "runs", "show", "wfrun_missing", code=1)
    assert missing["error"]["code"] == "RUN_NOT_FOUND"


def test_adjust_credits_and_debits_exactly(invoke):
    def run(*args: str, code: int = 0) -> Any:
        return json.loads(invoke(*args, "--json", code=code).stdout)

    account = run("accounts", "create", "Ada")["id"]
    assert run("accounts", "adjust", account, "5.5", "--memo", "goodwill")["available"] == (
        "5.50000000"
    )
    debit = run("accounts", "adjust", account, "-2.25", "--memo", "double top-up")
    assert (debit["amount"], debit["available"]) == ("-2.25000000", "3.25000000")
    refused = run("accounts", "adjust", account, "-4", "--memo", "too much", code=2)
    assert refused["error"] == {
        "code": "INSUFFICIENT_BALANCE",
        "detail": f"a debit of 4.00000000 CNY would take account {account} below zero "
        "(available 3.25000000); pass --allow-negative to allow it",
    }
    negative = run("accounts", "adjust", account, "-4", "--memo", "chargeback", "--allow-negative")
    assert negative["available"] == "-0.75000000"
    assert run("accounts", "show", account)["available"] == "-0.75000000"
    assert run("accounts", "adjust", account, "0", "--memo", "x", code=1)["error"]["detail"] == (
        "an adjustment must not be zero"
    )
    assert run("accounts", "adjust", account, "1e3", "--memo", "x", code=2)["error"] == {
        "code": "INVALID_PARAMETER",
        "detail": "Invalid value for AMOUNT: '1e3' is not a plain decimal amount (like 12 or 0.50)",
    }
    assert run("accounts", "adjust", account, "1", "--memo", " ", code=1)["error"]["detail"] == (
        "a memo is required: say why (it stays in the ledger)"
    )
    assert run("ledger", "check") == {"ok": True, "problems": []}


async def test_unpublish_and_archive_take_a_workflow_off_the_market(runtime, settings, http):
    who = await customer(runtime, balance="10")
    owner = await operator(runtime)
    published = await publish_demo(runtime, owner)
    workflow = published.workflow_id

    async def market() -> list[str]:
        response = await http.get("/workflow/market/list", headers=who.headers)
        return [item["workflow_id"] for item in response.json()["data"]["items"]]

    assert await market() == [workflow]
    unpublished = await wfrun(settings, "workflows", "unpublish", workflow)
    assert (unpublished["published_revision_id"], unpublished["archived_at"]) == (None, None)
    assert await market() == []
    for pinned in ({}, {"revision_id": published.revision_id}):
        body = {"workflow_id": workflow, "idempotency_key": "k", "inputs": {}} | pinned
        refused = await http.post("/workflow/run/submit", headers=who.headers, json=body)
        assert refused.status_code == 409, refused.text
        assert refused.json()["data"]["error"]["engine_code"] == "WORKFLOW_NOT_PUBLISHED"

    archived = await wfrun(settings, "workflows", "archive", workflow)
    assert archived["archived_at"] is not None
    assert await wfrun(settings, "workflows", "list") == []
    assert [w["id"] for w in await wfrun(settings, "workflows", "list", "--all")] == [workflow]
    await wfrun(settings, "workflows", "publish", workflow, "--revision", published.revision_id)
    assert await market() == [workflow]
    assert [w["archived_at"] for w in await wfrun(settings, "workflows", "list")] == [None]


@pytest.mark.parametrize("command", ["unpublish", "archive"])
def test_retiring_an_unknown_workflow_is_not_found(invoke, command):
    result = invoke("workflows", command, "wf_missing", "--json", code=1)
    assert json.loads(result.stdout) == {
        "error": {"code": "WORKFLOW_NOT_FOUND", "detail": "workflow wf_missing does not exist"}
    }


async def test_concurrent_refunds_never_exceed_the_charge(runtime, http):
    """Two refunds of 0.006 of a 0.01 charge at once: the run's row lock (PostgreSQL) or the
    write lock (SQLite) lets one through; the other is refused whole."""
    account, run = await _charged_run(runtime, http)
    outcomes = await asyncio.gather(
        *(
            operator_service.refund_run(
                runtime.db, run_order_id=run, amount=cny("0.006"), memo=f"m{i}"
            )
            for i in range(2)
        ),
        return_exceptions=True,
    )
    refunds = [o for o in outcomes if isinstance(o, operator_service.Refund)]
    refused = [o for o in outcomes if isinstance(o, InvalidParameter)]
    assert (len(refunds), len(refused)) == (1, 1), outcomes
    assert refunds[0].available == cny("9.996")
    assert await _available(runtime, account) == cny("9.996")


async def test_ledger_check_catches_a_refund_that_disagrees_with_its_entry(runtime, settings, http):
    """The audit's refund checks bite: a refund row edited behind wfrun's back (to more than
    its entry credited, and more than the run was charged) fails ``wfrun ledger check``."""
    _, run = await _charged_run(runtime, http)
    refund = await wfrun(settings, "runs", "refund", run, "--amount", "0.004", "--memo", "m")
    await _set_refund_amount(runtime, refund["id"], cny("0.02"))
    try:
        broken = await wfrun(settings, "ledger", "check", code=1)
    finally:
        await _set_refund_amount(runtime, refund["id"], cny("0.004"))
    assert broken["ok"] is False
    assert [p.split(":")[0] for p in broken["problems"]] == [
        "refund entry that is not one refund's revenue → available of its amount",
        "run refunded more than it was charged",
    ]
    assert await wfrun(settings, "ledger", "check") == {"ok": True, "problems": []}


async def _set_refund_amount(runtime: Runtime, refund_id: str, amount: int) -> None:
    async with runtime.db.transaction(write=True) as conn:
        await conn.execute(update(refunds).where(refunds.c.id == refund_id).values(amount=amount))


async def test_a_refund_gives_the_keys_spend_back(runtime, settings, http):
    """A key's spend is what it was charged net of refunds: a refunded run no longer counts
    against the key's limit in the run's period."""
    who = await customer(runtime, balance="10")
    made = await wfrun(
        settings, "keys", "create", who.account_id, "--spend-limit", "0.015", "--period", "total"
    )
    limited = Customer(who.account_id, made["api_key"])
    package = sleepy_package(seconds=0, price_per_second="0") | {"visibility": "public"}
    imported = await catalog.import_package(
        runtime.db, owner_id=await operator(runtime), document=package, publish=True
    )
    run = (await api.submit(http, limited, imported.workflow_id, "one"))["run_order_id"]
    await drain(runtime)
    assert await _key_use(settings, made["key_id"]) == ("0.00000000", "0.01000000")
    refused = await http.post(
        "/workflow/run/submit",
        json={"workflow_id": imported.workflow_id, "idempotency_key": "two", "inputs": {}},
        headers=limited.headers,
    )
    assert refused.json()["data"]["error"]["engine_code"] == "SPEND_LIMIT_EXCEEDED"

    await wfrun(settings, "runs", "refund", run, "--amount", "0.006", "--memo", "t-1")
    assert await _key_use(settings, made["key_id"]) == ("0.00000000", "0.00400000")
    await wfrun(settings, "runs", "refund", run, "--amount", "0.006", "--memo", "t-1")  # replay
    assert await _key_use(settings, made["key_id"]) == ("0.00000000", "0.00400000")
    await api.submit(http, limited, imported.workflow_id, "two")  # 0.004 + 0.01 ≤ 0.015
    assert await _key_use(settings, made["key_id"]) == ("0.01000000", "0.00400000")
    await _add_spent(runtime, made["key_id"], 1)  # behind wfrun's back: the books check bites
    try:
        broken = await wfrun(settings, "ledger", "check", code=1)
    finally:
        await _add_spent(runtime, made["key_id"], -1)
    assert [p.split(" (")[0] for p in broken["problems"]] == [
        "key spend counter differs from its runs"
    ]


async def _add_spent(runtime: Runtime, key_id: str, amount: int) -> None:
    async with runtime.db.transaction(write=True) as conn:
        changed = update(key_spend).where(key_spend.c.key_id == key_id)
        await conn.execute(changed.values(spent=key_spend.c.spent + amount))


async def _key_use(settings: Settings, key_id: str) -> tuple[str, str]:
    """The key's frozen and spent in its current period, as ``keys list`` shows them."""
    listed = await wfrun(settings, "keys", "list")
    (key,) = [k for k in listed if k["id"] == key_id]
    return key["period_frozen"], key["period_spent"]


async def test_migration_0017_gives_back_what_earlier_refunds_took(runtime, settings, http):
    """A database whose refunds were made before refunds lowered key spend (0016: spent held
    the whole charge) is given those refunds back once, by the upgrade to 0017."""
    who = await customer(runtime, balance="10")
    made = await wfrun(
        settings, "keys", "create", who.account_id, "--spend-limit", "1", "--period", "day"
    )
    package = sleepy_package(seconds=0, price_per_second="0") | {"visibility": "public"}
    imported = await catalog.import_package(
        runtime.db, owner_id=await operator(runtime), document=package, publish=True
    )
    limited = Customer(who.account_id, made["api_key"])
    run = (await api.submit(http, limited, imported.workflow_id, "one"))["run_order_id"]
    await drain(runtime)
    await wfrun(settings, "runs", "refund", run, "--amount", "0.003", "--memo", "t")
    async with runtime.db.transaction(write=True) as conn:
        await conn.run_sync(_down_to_0016)
        spent = select(key_spend.c.spent).where(key_spend.c.key_id == made["key_id"])
        assert (await conn.execute(spent)).scalar_one() == cny("0.01")  # as 0016 kept it
    await upgrade(runtime.db)
    assert await _key_use(settings, made["key_id"]) == ("0.00000000", "0.00700000")
    assert await wfrun(settings, "ledger", "check") == {"ok": True, "problems": []}


def _down_to_0016(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0016")
