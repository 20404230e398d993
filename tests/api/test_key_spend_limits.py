"""Issue 16, per-key spend limits through the HTTP API: a submit whose quote would take the
key's frozen + spent in the current period past its limit is a 402 ``SPEND_LIMIT_EXCEEDED``
with nothing frozen; settlement moves frozen → spent; a new UTC day allows again, ``total``
never resets; concurrent submits of one key never pass its limit together. The clock the
submit reads is moved by the test (``wfrun.services.runs.utcnow``), never waited for. The
``runtime`` fixture checks the ledger invariants after every test.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from tests.support import api
from tests.support.factories import Customer, customer, money_snapshot, operator, publish_package
from tests.support.factories import drain as run_all
from tests.support.waiting import until
from wfrun.clock import utcnow
from wfrun.runtime import Runtime
from wfrun.services import accounts, spending
from wfrun.services import runs as runs_service

FLAT = {"fixed_fee": "1.00", "price_per_second": "0", "estimated_seconds": 1}
"""A run quoted and charged exactly 1.00."""


async def _flat_workflow(rt: Runtime) -> str:
    package = {
        "format": "wfrun.workflow/v1",
        "slug": "flat",
        "title": "Flat",
        "engine": "local",
        "graph": {
            "1": {
                "class_type": "EmptyImage",
                "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
            },
            "2": {
                "class_type": "SaveImage",
                "inputs": {"images": ["1", 0], "filename_prefix": "f"},
            },
        },
        "inputs": [],
        "outputs": [{"key": "n2_images", "type": "image", "multiple": True}],
        "pricing": FLAT,
        "timeout_seconds": 60,
    }
    return await publish_package(rt, await operator(rt), package)


async def _limited(rt: Runtime, limit: str, period: str) -> tuple[Customer, str]:
    who = await customer(rt, balance="10")
    key_id = (await accounts.list_keys(rt.db, who.account_id))[0].id
    await spending.set_key_limit(rt.db, key_id, int(limit) * 100_000_000, period)
    return who, key_id


async def _submit(http: httpx.AsyncClient, who: Customer, workflow_id: str, key: str) -> Any:
    body = {"workflow_id": workflow_id, "idempotency_key": key, "inputs": {}}
    return await http.post("/workflow/run/submit", headers=who.headers, json=body)


async def _refused(http: httpx.AsyncClient, who: Customer, workflow_id: str, key: str) -> str:
    response = await _submit(http, who, workflow_id, key)
    error = response.json()["data"]["error"]
    assert (response.status_code, error["engine_code"]) == (402, "SPEND_LIMIT_EXCEEDED")
    detail: str = error["detail"]
    return detail


def _clock(monkeypatch: pytest.MonkeyPatch, later: timedelta) -> None:
    """Submits from now on happen ``later`` than now."""

    def moved() -> datetime:
        return utcnow() + later

    monkeypatch.setattr(runs_service, "utcnow", moved)


async def test_a_submit_past_the_daily_limit_is_refused_until_the_next_day(
    runtime, http, monkeypatch
):
    workflow_id = await _flat_workflow(runtime)
    alice, key_id = await _limited(runtime, "2", "day")
    for key in ("a", "b"):
        assert (await _submit(http, alice, workflow_id, key)).status_code == 200
    before = await money_snapshot(runtime)
    detail = await _refused(http, alice, workflow_id, "c")
    assert f"API key {key_id} past its spend limit of 2.00000000 CNY per UTC day" in detail
    assert await money_snapshot(runtime) == before  # nothing frozen, no run
    await run_all(runtime)  # both settle at exactly 1.00: frozen → spent
    view = (await spending.key_limits(runtime.db, [key_id]))[key_id]
    assert (view.frozen, view.spent) == (0, 200_000_000)
    await _refused(http, alice, workflow_id, "c")  # spent counts like frozen
    _clock(monkeypatch, timedelta(days=1))
    assert (await _submit(http, alice, workflow_id, "c")).status_code == 200
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == ("7.00000000", "1.00000000")
    await run_all(runtime)


async def test_a_released_freeze_gives_the_room_back(runtime, http):
    workflow_id = await _flat_workflow(runtime)
    alice, _ = await _limited(runtime, "1", "month")
    first = (await _submit(http, alice, workflow_id, "a")).json()["data"]["run_order_id"]
    await _refused(http, alice, workflow_id, "b")
    assert (await api.cancel(http, alice, first))["cancel_outcome"] == "cancelled"
    assert (await _submit(http, alice, workflow_id, "b")).status_code == 200
    await run_all(runtime)


async def test_a_total_limit_never_resets(runtime, http, monkeypatch):
    workflow_id = await _flat_workflow(runtime)
    alice, _ = await _limited(runtime, "1", "total")
    assert (await _submit(http, alice, workflow_id, "a")).status_code == 200
    await run_all(runtime)
    _clock(monkeypatch, timedelta(days=400))
    assert "per total (total)" in await _refused(http, alice, workflow_id, "b")


async def test_a_key_without_a_limit_and_other_keys_are_not_limited(runtime, http):
    workflow_id = await _flat_workflow(runtime)
    alice, key_id = await _limited(runtime, "1", "day")
    other = await accounts.create_key(runtime.db, account_id=alice.account_id)
    unlimited = Customer(alice.account_id, other.secret)
    assert (await _submit(http, alice, workflow_id, "a")).status_code == 200
    for key in ("b", "c"):
        assert (await _submit(http, unlimited, workflow_id, key)).status_code == 200
    await spending.set_key_limit(runtime.db, key_id, None, "day")  # removed
    assert (await _submit(http, alice, workflow_id, "d")).status_code == 200
    await run_all(runtime)


async def test_concurrent_submits_of_one_key_never_pass_its_limit(runtime, http):
    workflow_id = await _flat_workflow(runtime)
    alice, key_id = await _limited(runtime, "3", "day")
    answers = await asyncio.gather(*(_submit(http, alice, workflow_id, f"k{i}") for i in range(8)))
    codes = sorted(response.status_code for response in answers)
    assert codes == [200] * 3 + [402] * 5
    view = (await spending.key_limits(runtime.db, [key_id]))[key_id]
    assert (view.frozen, view.spent) == (300_000_000, 0)
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == ("7.00000000", "3.00000000")
    await run_all(runtime)


async def test_a_key_without_a_limit_pays_no_statement_for_limits(runtime, http):
    """Keys without a limit (most) keep the submit's statements: none touches the counters;
    a limited key's submit adds exactly the counter's upsert and its conditional UPDATE
    (measured on SQLite: 13 statements per submit without a limit, as before; 15 with one)."""
    workflow_id = await _flat_workflow(runtime)
    free = await customer(runtime, balance="10")
    limited, _ = await _limited(runtime, "5", "day")
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert (await _submit(http, free, workflow_id, "a")).status_code == 200
        free_statements, seen[:] = list(seen), []
        assert (await _submit(http, limited, workflow_id, "a")).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert not [s for s in free_statements if "key_spend" in s]
    assert len([s for s in seen if "key_spend" in s]) == 2
    await run_all(runtime)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_resend_racing_its_original_answers_the_run_not_the_spend_limit(runtime, http):
    """Two sends of one request (same idempotency key) by a key with room for one run: the
    one that waited for the other's reservation answers the other's run (a replay), never
    402 — the key is taken, not the limit passed. The key's counter is held by the test
    until both submits wait on it, so they reserve one after the other."""
    workflow_id = await _flat_workflow(runtime)
    alice, key_id = await _limited(runtime, "2", "day")
    assert (await _submit(http, alice, workflow_id, "a")).status_code == 200  # counter row
    async with runtime.db.engine.connect() as holder:
        await holder.execute(
            text("SELECT frozen FROM key_spend WHERE key_id = :key FOR UPDATE"), {"key": key_id}
        )
        sends = [asyncio.create_task(_submit(http, alice, workflow_id, "b")) for _ in range(2)]

        async def both_wait() -> bool:
            async with runtime.db.engine.connect() as probe:
                waiting: int = await probe.scalar(text(_WAITING_ON_LOCKS))
            return waiting == 2

        await until(both_wait, what="both sends to wait on the key's counter")
        await holder.commit()
    answers = [await send for send in sends]
    assert [a.status_code for a in answers] == [200, 200], [a.json() for a in answers]
    assert len({a.json()["data"]["run_order_id"] for a in answers}) == 1
    view = (await spending.key_limits(runtime.db, [key_id]))[key_id]
    assert (view.frozen, view.spent) == (200_000_000, 0)
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == ("8.00000000", "2.00000000")
    await run_all(runtime)


_WAITING_ON_LOCKS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)
