"""Workers known to the database: registration, the heartbeat that keeps their claims, and
the hand-back of those claims when a worker stops."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from wfrun.clock import utcnow
from wfrun.db import runs as runs_db
from wfrun.db.database import Database
from wfrun.queue import broker, heartbeats
from wfrun.services.claims import Claim
from wfrun.services.run_log import log_event


async def register_worker(
    db: Database, *, worker_id: str, hostname: str, pid: int, concurrency: int
) -> None:
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await heartbeats.register_worker(
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

    Returns (run ids whose lease was lost, run ids whose cancellation was requested). One
    statement a beat on PostgreSQL however many runs the worker has (``queue.heartbeats``)."""
    now = utcnow()
    jobs = [(job, attempt) for job, attempt, _ in owned]
    async with db.transaction(write=True) as conn:
        kept = await heartbeats.beat(
            conn, worker_id=worker_id, owned=jobs, now=now, until=now + lease
        )
        lost = {run for _, _, run in owned if run not in kept}
        cancelled = {run for run, cancel in kept.items() if cancel}
        if lost:  # rare: one more statement, so a lost run's cancel is reported too
            cancelled |= await runs_db.cancel_flags(conn, sorted(lost))
    return lost, cancelled


async def hand_back(db: Database, *, worker_id: str, claims: Sequence[Claim]) -> list[str]:
    """A stopping worker gives its unfinished claims back to the queue, claimable at once by
    any worker (which re-attaches to or re-runs them), instead of leaving them to lapse with
    their leases. Jobs are taken in id order (lock order job → run). Returns the run ids
    handed back; a claim this worker no longer owns is skipped."""
    now = utcnow()
    reason = f"handed back by worker {worker_id}, which was stopping"
    returned: list[str] = []
    async with db.transaction(write=True) as conn:
        for claim in sorted(claims, key=lambda c: c.job_id):
            if await broker.hand_back(
                conn, job_id=claim.job_id, attempt=claim.attempt, now=now, error=reason
            ):
                await log_event(
                    conn,
                    claim.run,
                    now,
                    "handed_back",
                    f"{reason}; another worker takes it",
                    level="warning",
                    attempt=claim.attempt,
                )
                returned.append(claim.run.id)
    return returned
