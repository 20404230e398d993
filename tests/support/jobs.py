"""What passing time does to a run's job, done at once: a test makes a retry due instead of
sleeping until it is (and racing a worker that might re-claim it meanwhile)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from wfrun.clock import utcnow
from wfrun.db.schema import jobs, runs
from wfrun.queue.broker import JobStatus
from wfrun.runtime import Runtime


async def retry_due_now(rt: Runtime, run_id: str) -> None:
    """The run's job waits for a retry (or a deferral): its time has come."""
    async with rt.db.transaction(write=True) as conn:
        changed = await conn.execute(
            update(jobs)
            .where(jobs.c.run_id == run_id, jobs.c.status == JobStatus.TODO)
            .values(scheduled_at=utcnow())
        )
    assert changed.rowcount == 1, f"run {run_id} has no job waiting"


async def started_ago(rt: Runtime, run_id: str, seconds: float) -> None:
    """The running run started ``seconds`` ago: its time limit is that much nearer, without
    racing a short limit against a busy machine before the test reaches the moment it tests."""
    async with rt.db.transaction(write=True) as conn:
        changed = await conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.started_at.is_not(None))
            .values(started_at=utcnow() - timedelta(seconds=seconds))
        )
    assert changed.rowcount == 1, f"run {run_id} has not started"


async def due_at(rt: Runtime, run_id: str) -> datetime:
    """When the run's waiting job comes due (a retry's or a wait's end)."""
    async with rt.db.transaction() as conn:
        found = await conn.execute(
            select(jobs.c.scheduled_at).where(
                jobs.c.run_id == run_id, jobs.c.status == JobStatus.TODO
            )
        )
        at: datetime = found.scalar_one()
    return at if at.tzinfo else at.replace(tzinfo=UTC)
