"""What passing time does to a run's job, done at once: a test makes a retry due instead of
sleeping until it is (and racing a worker that might re-claim it meanwhile)."""

from __future__ import annotations

from sqlalchemy import update

from wfrun.clock import utcnow
from wfrun.db.schema import jobs
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
