"""Execute one claimed run: prepare inputs, drive the engine, store outputs, settle.

Transactions happen only inside the service calls (``run_progress``, ``run_outcomes``); the
engine runs between them.

How a failure ends the attempt (``_end_on_error``): the expected ones map onto the failure
catalogue; the database being unavailable writes nothing (nothing can be written) and leaves
the run to its lease, so a worker re-claims it once the database is back; anything else is a
bug, and a bug is usually deterministic for the run's inputs, so retrying would only burn
``max_attempts`` leases and repeat the same work (issue 10: a malformed media URL crashed the
runner, and the run hung three leases, fetching the URL three times). Such a run fails at once
as an internal error naming the exception (logged with its traceback), its freeze released.
Provider runs are the exception: an upstream task may exist and be billed, so they are left
to their lease and the re-dispatch adopts the task (``workers/seedance``).

An attempt only gets what is left of the run's time limit, which spans every attempt
(``services.run_deadlines``); an instance that stops answering is waited for without using an
attempt (``services.instance_waits``). A run is charged the engine's own execution time, on
success and on cancel alike (``ProgressRecorder.executed_ms``): never time spent fetching media
or waiting in an instance's queue.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from wfrun.clock import utcnow
from wfrun.db.database import Database
from wfrun.domain.failures import Failure, FailureCode, failure_code
from wfrun.domain.manifest import validate_inputs
from wfrun.engines.base import (
    Engine,
    EngineBusy,
    EngineInterrupted,
    EnginePermanent,
    EngineTransient,
    EngineUnreachable,
    NodeResult,
    RunSpec,
)
from wfrun.engines.binding import bind_inputs
from wfrun.errors import DatabaseUnavailable, ServiceError
from wfrun.fetch import SafeFetcher
from wfrun.metrics import Metrics
from wfrun.services import cost_stops, instance_waits, run_deadlines, run_outcomes, run_progress
from wfrun.services.claims import CancelRequested, Claim, Fenced
from wfrun.services.cost_stops import CostLimitReached
from wfrun.storage.base import ObjectStore
from wfrun.workers import seedance
from wfrun.workers.media import resolve_media
from wfrun.workers.progress import ProgressRecorder
from wfrun.workers.seedance import SeedanceDeps

log = logging.getLogger(__name__)
CRASH_REASON = "The run stopped on an internal error."


@dataclass
class RunControl:
    """Signals the worker's heartbeat loop sends into a running run."""

    interrupt: threading.Event = field(default_factory=threading.Event)
    cancel_requested: bool = False
    lease_lost: bool = False
    handing_back: bool = False
    """The worker is stopping and gives the run back to the queue: nothing may end it."""


@dataclass(frozen=True)
class RunnerDeps:
    db: Database
    storage: ObjectStore
    engines: Mapping[str, Engine]
    fetcher: SafeFetcher
    output_retention: timedelta = timedelta(days=7)
    retry_delay: timedelta = timedelta(seconds=5)
    busy_delay: timedelta = timedelta(seconds=10)
    seedance: SeedanceDeps | None = None
    metrics: Metrics = field(default_factory=Metrics)


async def run_claim(deps: RunnerDeps, claim: Claim, control: RunControl) -> None:
    """Drive one claim to a terminal state (or give it back on a transient failure)."""
    started = time.monotonic()
    sink = ProgressRecorder(deps.db, claim, control.interrupt)
    try:
        if claim.spec.engine_kind == "seedance":
            await _dispatch_provider(deps, claim, control)
        else:
            await _execute(deps, claim, control, sink)
    except Exception as exc:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        if await _end_on_error(deps, claim, control, exc, elapsed_ms, sink):
            return
        if claim.spec.engine_kind == "seedance":
            raise  # left to its lease: the re-dispatch adopts an upstream task, if any
        await _end_on_crash(deps, claim, exc, elapsed_ms)


async def _end_on_crash(deps: RunnerDeps, claim: Claim, exc: Exception, elapsed_ms: int) -> None:
    """Fail the run at once on an error nobody expected (see the module docstring)."""
    log.error("run %s attempt %d crashed its runner", claim.run.id, claim.attempt, exc_info=exc)
    failure = Failure(
        FailureCode.WORKER_LOST,
        f"attempt {claim.attempt} stopped on an unexpected error, {type(exc).__name__}: {exc}; "
        "failed at once instead of retried, freeze released",
        reason_override=CRASH_REASON,
    )
    await run_outcomes.fail(deps.db, claim, failure, execution_ms=elapsed_ms)


async def _execute(
    deps: RunnerDeps, claim: Claim, control: RunControl, sink: ProgressRecorder
) -> None:
    """Prepare and run the attempt within what is left of the run's time limit (it spans
    every attempt: ``services.run_deadlines``); charged the engine's own execution time."""
    left = run_deadlines.seconds_left(claim.run, claim.spec, utcnow())
    if left <= 0:
        raise TimeoutError()
    try:
        async with asyncio.timeout(left):  # not wait_for: it can swallow a cancel on 3.11
            results = await _engine_run(deps, claim, control, sink, left)
    finally:
        sink.close()
    _require_outputs(claim, results)
    outputs = await _store_outputs(deps.storage, claim, results)
    completed = await run_outcomes.complete(
        deps.db,
        claim,
        outputs=outputs,
        execution_ms=sink.executed_ms(),
        retention=deps.output_retention,
    )
    if not completed:  # fenced out: another attempt owns the run; drop our copies
        await _discard_outputs(deps.storage, outputs)


async def _engine_run(
    deps: RunnerDeps, claim: Claim, control: RunControl, sink: ProgressRecorder, left: float
) -> dict[str, NodeResult]:
    spec = await _prepare(deps, claim, left)
    if control.interrupt.is_set():  # cancelled while its media were fetched: never executed
        raise EngineInterrupted()
    engine = claim.spec.engine_kind
    with deps.metrics.engine_attempt(engine, submitted=claim.run.created_at, now=utcnow()):
        results = await deps.engines[engine].execute(spec, sink, control.interrupt)
    await sink.flush()  # progress gathered since the last write (workers.progress)
    if sink.cancel_seen:  # at its last node boundary: cancelled all the same, as before
        raise CancelRequested()
    return results


async def _end_on_error(
    deps: RunnerDeps,
    claim: Claim,
    control: RunControl,
    exc: Exception,
    elapsed_ms: int,
    sink: ProgressRecorder,
) -> bool:
    """Record what ``exc`` means for the run; False for an error nobody expected."""
    if isinstance(exc, CancelRequested | EngineInterrupted):
        stop = cost_stops.found(exc, sink.stop)
        finished = exc.finished if isinstance(exc, EngineInterrupted) else {}
        await _after_interrupt(deps, claim, control, sink.executed_ms(), stop, finished)
    elif isinstance(exc, Fenced):
        log.warning("dropping run %s: %s", claim.run.id, exc)
    elif isinstance(exc, DatabaseUnavailable):  # before ServiceError: not the run's fault
        log.warning("run %s left to its lease: %s", claim.run.id, exc.detail)
    elif isinstance(exc, TimeoutError):
        failure = run_deadlines.timed_out(claim.spec)
        await run_outcomes.fail(deps.db, claim, failure, execution_ms=elapsed_ms)
    elif isinstance(exc, EngineBusy):
        await _wait_for_engine(deps, claim, exc)
    elif isinstance(exc, EngineUnreachable) and claim.run.instance_id is not None:
        await _wait_for_instance(deps, claim, exc)
    elif isinstance(exc, EngineTransient):
        await _retry_later(deps, claim, exc)
    elif isinstance(exc, EnginePermanent):
        await run_outcomes.fail(deps.db, claim, exc.failure(), execution_ms=elapsed_ms)
    elif isinstance(exc, ServiceError):  # stored inputs no longer valid (bytes that do not fit)
        code = failure_code(exc.engine_code, FailureCode.INVALID_WORKFLOW_INPUT)
        await run_outcomes.fail(deps.db, claim, Failure(code, exc.detail), execution_ms=None)
    else:
        return False
    return True


async def _wait_for_engine(deps: RunnerDeps, claim: Claim, exc: EngineBusy) -> None:
    delay = deps.busy_delay * random.uniform(1.0, 1.5)  # spread a burst's retries
    if await run_progress.wait_for_engine(deps.db, claim, delay=delay, error=exc.message):
        return
    failure = Failure(
        FailureCode.ENGINE_UNAVAILABLE,
        f"the engine stayed busy past the run's time limit: {exc.message}",
    )
    await run_outcomes.fail(deps.db, claim, failure, execution_ms=None)


async def _retry_later(deps: RunnerDeps, claim: Claim, exc: EngineTransient) -> None:
    """Another attempt after ``retry_delay``, unless it could only start past the time limit."""
    left = run_deadlines.seconds_left(claim.run, claim.spec, utcnow())
    provider = claim.spec.engine_kind in run_deadlines.PROVIDER_KINDS  # its own tracking ends it
    if provider or left > deps.retry_delay.total_seconds():
        await run_progress.retry_later(deps.db, claim, delay=deps.retry_delay, error=exc.message)
        return
    failure = run_deadlines.timed_out(claim.spec, f"no time left to retry after: {exc.message}")
    await run_outcomes.fail(deps.db, claim, failure, execution_ms=None)


async def _wait_for_instance(deps: RunnerDeps, claim: Claim, exc: EngineUnreachable) -> None:
    """The instance went away (a restart, an outage): weather, so the run waits for it (or
    for another instance, when this one had not accepted its prompt) without using an
    attempt, until its time limit (``services.instance_waits``)."""
    if await instance_waits.wait_for_instance(
        deps.db, claim, accepted=exc.accepted, error=exc.message
    ):
        return
    failure = run_deadlines.timed_out(claim.spec, f"its instance stayed unreachable: {exc.message}")
    await run_outcomes.fail(deps.db, claim, failure, execution_ms=None)


async def _dispatch_provider(deps: RunnerDeps, claim: Claim, control: RunControl) -> None:
    if deps.seedance is None:
        raise EnginePermanent(
            "the seedance engine is not configured on this worker (seedance.ark_api_key)",
            code=FailureCode.PROVIDER_NOT_CONFIGURED,
        )
    await seedance.dispatch(deps.seedance, claim, lambda: control.cancel_requested)


async def _after_interrupt(
    deps: RunnerDeps,
    claim: Claim,
    control: RunControl,
    execution_ms: int,
    stop: CostLimitReached | None = None,
    finished: Mapping[str, NodeResult] | None = None,
) -> None:
    if control.lease_lost or control.handing_back:
        log.warning("run %s: interrupted for its next owner, not cancelled", claim.run.id)
        return
    if stop is not None:  # reached its cost ceiling (services.cost_stops): keeps what it made
        outputs = await _store_outputs(deps.storage, claim, finished or {})
        kept = run_outcomes.kept_outputs(claim, outputs, deps.output_retention)
        ended = await cost_stops.end_at_cap(
            deps.db, claim, stop, execution_ms=execution_ms, kept=kept
        )
        if not ended:  # fenced out: another attempt owns the run
            await _discard_outputs(deps.storage, outputs)
        return
    await run_outcomes.cancel_consumed(deps.db, claim, execution_ms=execution_ms)


async def _prepare(deps: RunnerDeps, claim: Claim, left: float) -> RunSpec:
    """Re-validate the stored inputs (pure), obtain their media, bind them into the graph."""
    validated = validate_inputs(claim.spec.inputs, claim.run.inputs)
    media, names = await resolve_media(
        validated, claim.spec.inputs, claim.assets, deps.storage, deps.fetcher
    )
    graph = bind_inputs(claim.spec.payload, claim.spec.inputs, validated.values, names)
    return RunSpec(
        run_id=claim.run.id,
        attempt=claim.attempt,
        graph=graph,
        media=media,
        target=claim.instance_url,
        engine_prompt_id=claim.run.engine_prompt_id,
        timeout_seconds=left,
        first_dispatch=claim.first_dispatch,
    )


def _require_outputs(claim: Claim, results: Mapping[str, NodeResult]) -> None:
    """A media output the manifest promises but the engine did not produce fails the run
    (and releases its freeze): nobody pays for a result they did not get."""
    for spec in claim.spec.outputs:
        if spec.type != "text" and not results.get(spec.node_id, NodeResult()).files:
            raise EnginePermanent(
                f"output {spec.key} (node {spec.node_id}) produced no file",
                code=FailureCode.ENGINE_OUTPUT_MISSING,
                node_id=spec.node_id,
            )


async def _discard_outputs(storage: ObjectStore, outputs: dict[str, Any]) -> None:
    for entry in outputs.values():
        for item in entry["files"]:
            await storage.delete(item["storage_key"])


async def _store_outputs(
    storage: ObjectStore, claim: Claim, results: Mapping[str, NodeResult]
) -> dict[str, Any]:
    """Copy engine outputs into storage, keyed by the revision's output manifest."""
    outputs: dict[str, Any] = {}
    prefix = f"runs/{claim.run.id}/{claim.attempt}"
    for spec in claim.spec.outputs:
        result = results.get(spec.node_id, NodeResult())
        files = []
        for item in result.files:
            key = f"{prefix}/{spec.key}/{item.filename}"
            await storage.put(key, item.data, content_type=item.mime_type)
            files.append(
                {
                    "storage_key": key,
                    "filename": item.filename,
                    "mime_type": item.mime_type,
                    "size_bytes": len(item.data),
                }
            )
        outputs[spec.key] = {
            "type": spec.type,
            "multiple": spec.multiple,
            "files": files,
            "text": list(result.text),
        }
    return outputs
