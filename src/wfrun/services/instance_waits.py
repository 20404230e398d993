"""Runs waiting for an engine instance that stopped answering (issue 11: "restarts are
weather, not failure"). A ComfyUI restart takes 8–28 s; retrying on a timer burnt a run's
``max_attempts`` in 15 s and failed it ``ENGINE_UNAVAILABLE`` while the instance still showed
healthy.

Now the first failed dispatch or connection marks the instance unhealthy at once (no run is
placed on it until a probe gets an answer again) and hands the run's job back without using an
attempt, logged once:

- if the instance had accepted the run's prompt, only it may still hold it: the job waits
  until the instance comes back (the health probe makes it claimable at once,
  ``services.instances.record_probe``), and the new attempt re-attaches to the prompt by its
  engine prompt id, or submits it again if the restart forgot it;
- otherwise the job is claimable at once and placement puts it on another able instance, or
  keeps it waiting (without attempts) until one is healthy.

Either way the wait ends at the run's time limit (``services.run_deadlines``): the job is never
scheduled past it, and the claim that finds the run past it ends it ``ENGINE_TIMEOUT``.
"""

from __future__ import annotations

from datetime import datetime

from wfrun.clock import to_rfc3339, utcnow
from wfrun.db import instances as instances_db
from wfrun.db.database import Database
from wfrun.queue import broker
from wfrun.services import ops_log, run_deadlines
from wfrun.services.claims import Claim
from wfrun.services.instances import UNHEALTHY_AFTER
from wfrun.services.run_log import log_event


async def wait_for_instance(db: Database, claim: Claim, *, accepted: bool, error: str) -> bool:
    """Mark the claim's instance unhealthy and hand the job back to wait (see the module
    docstring); False when the run's time limit has run out (the caller ends the run)."""
    now = utcnow()
    end = run_deadlines.deadline(claim.run, claim.spec)
    instance_id = claim.run.instance_id
    if end is None or end <= now or instance_id is None:
        return False
    async with db.transaction(write=True) as conn:
        deferred = await broker.hand_back(
            conn,
            job_id=claim.job_id,
            attempt=claim.attempt,
            now=now,
            at=end if accepted else now,
            error=f"instance unreachable: {error}",
        )
        if not deferred:  # another claim owns the job now: nothing to record
            return True
        marked = await instances_db.mark_down(
            conn, instance_id, error=error, now=now, unhealthy_after=UNHEALTHY_AFTER
        )
        await log_event(
            conn, claim.run, now, "waiting", _why(claim, accepted, error, end), level="warning"
        )
    if marked:
        why = "a dispatch or connection to it failed"
        ops_log.instance_health(
            instance_id, claim.instance_url, healthy=False, error=error, why=why
        )
    wait = (end - now).total_seconds() if accepted else 0.0
    ops_log.deferred(claim.run, attempt=claim.attempt, delay_seconds=wait, why=f"instance: {error}")
    return True


def _why(claim: Claim, accepted: bool, error: str, end: datetime) -> str:
    where = claim.instance_url or claim.run.instance_id
    then = "it answers again" if accepted else "it or another able instance can take the run"
    limit = to_rfc3339(end)
    return (
        f"instance {where} stopped answering ({error}); waiting, without using an attempt, "
        f"until {then}, at the latest until the run's time limit at {limit}"
    )
