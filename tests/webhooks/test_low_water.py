"""The fan-out's low-water mark bounds its scan of the outbox without ever stepping over a row
that is not handled yet, or one young enough that an older transaction may still commit
below it."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.support.factories import customer
from tests.webhooks.support import ok, quick_workflow, submit
from wfrun.clock import utcnow
from wfrun.db import outbox
from wfrun.db import webhook_deliveries as deliveries_db
from wfrun.db.webhook_progress import cursor
from wfrun.runtime import Runtime


async def test_the_low_water_mark_stops_at_the_first_unhandled_row(
    runtime: Runtime, http: httpx.AsyncClient
):
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    run_ids = [ok(await submit(http, alice, workflow, f"k{i}"))["run_order_id"] for i in range(3)]
    async with runtime.db.transaction() as conn:
        a, b, c = [(await outbox.for_run(conn, run_id))[0].id for run_id in run_ids]
    later, now = utcnow() + timedelta(hours=1), utcnow()
    async with runtime.db.transaction(write=True) as conn:
        await deliveries_db.mark_fanned(conn, [a, c], now)
        await deliveries_db.advance_low_water(conn, now - timedelta(hours=1))
        assert await cursor(conn, deliveries_db.LOW_WATER) is None  # all rows too young
        await deliveries_db.advance_low_water(conn, later)
        assert await cursor(conn, deliveries_db.LOW_WATER) == a  # b is not handled yet
        assert [e.id for e in await deliveries_db.unfanned(conn, 10)] == [b]
        await deliveries_db.mark_fanned(conn, [b], now)
        await deliveries_db.advance_low_water(conn, later)
        assert await cursor(conn, deliveries_db.LOW_WATER) == c
        assert await deliveries_db.unfanned(conn, 10) == []
