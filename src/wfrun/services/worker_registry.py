"""Workers known to the database: registration and the heartbeat that keeps their claims."""

from __future__ import annotations

from datetime import timedelta

from wfrun.clock import utcnow
from wfrun.db import runs as runs_db
from wfrun.db.database import Database
from wfrun.queue import broker


async def register_worker(
    db: Database, *, worker_id: str, hostname: str, pid: int, concurrency: int
) -> None:
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await broker.register_worker(
            conn,
            {
                "id": worker_id,
                "hostname": hostname,
                "pid": pid,
                "concurrency": concurrency,
                "started_at": now,
                "heartbeat_at": now,
            },
        )


async def heartbeat(
    db: Database, *, worker_id: str, owned: list[tuple[str, int, str]], lease: timedelta
) -> tuple[set[str], set[str]]:
    """Extend the leases of ``owned`` (job, attempt, run) jobs and report on them.

    Returns (run ids whose lease was lost, run ids whose cancellation was requested).
    Jobs are locked in id order, as every path locks them first (lock order job → run)."""
    now = utcnow()
    lost: set[str] = set()
    async with db.transaction(write=True) as conn:
        await broker.worker_heartbeat(conn, worker_id, now)
        for job_id, attempt, run_id in sorted(owned):
            if not await broker.extend_lease(
                conn, job_id=job_id, attempt=attempt, until=now + lease
            ):
                lost.add(run_id)
        cancelled = await runs_db.cancel_flags(conn, [run for _, _, run in owned])
    return lost, cancelled
