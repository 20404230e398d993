"""A run's time limit: the package's ``timeout_seconds`` bounds the run's whole life after it
starts (``runs.started_at``), across attempts, transient retries, waits for an engine instance
and re-dispatches — not each attempt afresh (issue 11: a run whose attempts kept failing stayed
``running`` for minutes past its limit, its money frozen).

Every place that would let the run go on checks it: the attempt's engine wait gets only the
time left (``workers.runner``), a retry or a wait that could only start after the limit ends
the run instead (``run_progress``, ``instance_waits``), and a claim of a run already past its
limit ends it (``claims``), so a job waiting for a retry is ended at the latest when its
deferral (never later than the limit) comes due. The ending is ``ENGINE_TIMEOUT``, the freeze
released, through ``run_endings.end_run``.

Provider runs (Seedance) are left out: their upstream task may exist and be billed, so only
their own tracking ends them (``workers/seedance``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from wfrun.db.runs import Run
from wfrun.domain.failures import Failure, FailureCode
from wfrun.domain.pricing import release
from wfrun.domain.revisions import RevisionSpec
from wfrun.domain.runs import RunStatus
from wfrun.services.run_endings import Ending

PROVIDER_KINDS = frozenset({"seedance"})


def deadline(run: Run, spec: RevisionSpec) -> datetime | None:
    """When the run's time limit runs out; None before it started."""
    if run.started_at is None:
        return None
    return run.started_at + timedelta(seconds=spec.timeout_seconds)


def seconds_left(run: Run, spec: RevisionSpec, now: datetime) -> float:
    """Seconds of the time limit left at ``now`` (the whole limit before the run started)."""
    end = deadline(run, spec)
    if end is None:
        return float(spec.timeout_seconds)
    return (end - now).total_seconds()


def overdue(run: Run, spec: RevisionSpec, now: datetime) -> bool:
    """A started, unfinished run past its limit, that this module may end."""
    return (
        run.status is RunStatus.RUNNING
        and spec.engine_kind not in PROVIDER_KINDS
        and seconds_left(run, spec, now) <= 0
    )


def timed_out(spec: RevisionSpec, why: str = "") -> Failure:
    """The failure of a run that ran out of time (``why``: what it was doing)."""
    detail = f"the run exceeded its time limit of {spec.timeout_seconds} s"
    if why:
        detail += f" ({why})"
    return Failure(FailureCode.ENGINE_TIMEOUT, f"{detail}; freeze released")


def overdue_ending(run: Run, spec: RevisionSpec) -> Ending:
    """How a claim ends a run found past its limit (it was waiting for a retry or for its
    instance): failed, the whole freeze released."""
    failure = timed_out(spec, "counted from its start, across retries and waits")
    return Ending(
        RunStatus.FAILED,
        release(run.quote_amount),
        f"{failure.code.name}: {failure.detail}",
        failure,
    )
