"""The run stream's ids become visible in increasing order, even when transactions commit in
another order than they wrote (PostgreSQL: rows are numbered at commit, migration 0009); a
resuming reader therefore never misses a row. And every change and log line is in it."""

from __future__ import annotations

import pytest

from tests.support.api import submit
from tests.support.factories import customer, data_uri, drain, operator, png_bytes, publish_demo
from wfrun.clock import utcnow
from wfrun.db import outbox
from wfrun.db import runs as runs_db
from wfrun.db import stream as stream_db
from wfrun.runtime import Runtime
from wfrun.services.run_log import log_event


async def _run(runtime: Runtime, http, key: str):
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice = await customer(runtime, balance="5")
    data = await submit(http, alice, workflow_id, key, {"n1_image": data_uri(png_bytes(8, 8))})
    async with runtime.db.transaction() as conn:
        run = await runs_db.find_run(conn, data["run_order_id"])
    assert run is not None
    return run


async def _stream(runtime: Runtime, account_id: str, after: int = 0):
    async with runtime.db.transaction() as conn:
        return await stream_db.read_after(
            conn, account_id=account_id, run_id=None, after=after, limit=1000
        )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_row_that_becomes_visible_later_has_a_larger_id(runtime: Runtime, http):
    """PostgreSQL only: SQLite has one writer, so its ids follow commit order by construction."""
    run = await _run(runtime, http, "order")
    seen = (await _stream(runtime, run.account_id))[-1].id
    async with runtime.db.transaction(write=True) as slow:
        await log_event(slow, run, utcnow(), "bench", "written first, committed last")
        async with runtime.db.transaction(write=True) as fast:
            await log_event(fast, run, utcnow(), "bench", "written last, committed first")
        visible = await _stream(runtime, run.account_id, after=seen)
        assert [i.message for i in visible] == ["written last, committed first"]
        cursor = visible[-1].id  # a client that got this far resumes from here …
    resumed = await _stream(runtime, run.account_id, after=cursor)
    assert [i.message for i in resumed] == ["written first, committed last"]  # … and gets it


async def test_every_change_and_log_line_is_in_the_stream_once_in_order(runtime: Runtime, http):
    run = await _run(runtime, http, "all")
    await drain(runtime)
    items = await _stream(runtime, run.account_id)
    async with runtime.db.transaction() as conn:
        changes = await outbox.for_run(conn, run.id)
        lines = await runs_db.list_events(conn, run.id, limit=1000)
    assert [i.source_id for i in items if i.source == "change"] == [c.id for c in changes]
    assert [i.source_id for i in items if i.source == "log"] == [e.id for e in lines]
    assert [i.status for i in items if i.source == "change"] == ["queued", "running", "succeeded"]
    ids = [i.id for i in items]
    assert ids == sorted(set(ids))
