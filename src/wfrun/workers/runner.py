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

from wfrun.db.database import Database
from wfrun.domain.failures import Failure, FailureCode, failure_code
from wfrun.domain.manifest import validate_inputs
from wfrun.engines.base import (
    Engine,
    EngineBusy,
    EngineInterrupted,
    EnginePermanent,
    EngineTransient,
    NodeResult,
    RunSpec,
)
from wfrun.engines.binding import bind_inputs
from wfrun.errors import DatabaseUnavailable, ServiceError
from wfrun.fetch import SafeFetcher
from wfrun.services import run_outcomes, run_progress
from wfrun.services.claims import CancelRequested, Claim, Fenced
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


async def run_claim(deps: RunnerDeps, claim: Claim, control: RunControl) -> None:
    """Drive one claim to a terminal state (or give it back on a transient failure)."""
    started = time.monotonic()
    try:
        if claim.spec.engine_kind == "seedance":
            await _dispatch_provider(deps, claim, control)
        else:
            await _execute(deps, claim, control, started)
    except Exception as exc:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        if await _end_on_error(deps, claim, control, exc, elapsed_ms):
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


async def _execute(deps: RunnerDeps, claim: Claim, control: RunControl, started: float) -> None:
    spec = await _prepare(deps, claim)
    engine = deps.engines[claim.spec.engine_kind]
    sink = ProgressRecorder(deps.db, claim)
    try:
        results = await asyncio.wait_for(
            engine.execute(spec, sink, control.interrupt), timeout=claim.spec.timeout_seconds
        )
        await sink.flush()  # progress gathered since the last write (workers.progress)
    finally:
        sink.close()
    wall_ms = int((time.monotonic() - started) * 1000)
    _require_outputs(claim, results)
    outputs = await _store_outputs(deps.storage, claim, results)
    completed = await run_outcomes.complete(
        deps.db,
        claim,
        outputs=outputs,
        execution_ms=sink.engine_ms if sink.engine_ms is not None else wall_ms,
        retention=deps.output_retention,
    )
    if not completed:  # fenced out: another attempt owns the run; drop our copies
        await _discard_outputs(deps.storage, outputs)


async def _end_on_error(
    deps: RunnerDeps, claim: Claim, control: RunControl, exc: Exception, elapsed_ms: int
) -> bool:
    """Record what ``exc`` means for the run; False for an error nobody expected."""
    if isinstance(exc, CancelRequested | EngineInterrupted):
        await _after_interrupt(deps, claim, control, elapsed_ms)
    elif isinstance(exc, Fenced):
        log.warning("dropping run %s: %s", claim.run.id, exc)
    elif isinstance(exc, DatabaseUnavailable):  # before ServiceError: not the run's fault
        log.warning("run %s left to its lease: %s", claim.run.id, exc.detail)
    elif isinstance(exc, TimeoutError):
        limit = claim.spec.timeout_seconds
        failure = Failure(
            FailureCode.ENGINE_TIMEOUT, f"the run exceeded its time limit of {limit} s"
        )
        await run_outcomes.fail(deps.db, claim, failure, execution_ms=elapsed_ms)
    elif isinstance(exc, EngineBusy):
        await _wait_for_engine(deps, claim, exc)
    elif isinstance(exc, EngineTransient):
        await run_progress.retry_later(deps.db, claim, delay=deps.retry_delay, error=exc.message)
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


async def _dispatch_provider(deps: RunnerDeps, claim: Claim, control: RunControl) -> None:
    if deps.seedance is None:
        raise EnginePermanent(
            "the seedance engine is not configured on this worker (seedance.ark_api_key)",
            code=FailureCode.PROVIDER_NOT_CONFIGURED,
        )
    await seedance.dispatch(deps.seedance, claim, lambda: control.cancel_requested)


async def _after_interrupt(
    deps: RunnerDeps, claim: Claim, control: RunControl, execution_ms: int
) -> None:
    if control.lease_lost or control.handing_back:
        log.warning("run %s: interrupted for its next owner, not cancelled", claim.run.id)
        return
    await run_outcomes.cancel_consumed(deps.db, claim, execution_ms=execution_ms)


async def _prepare(deps: RunnerDeps, claim: Claim) -> RunSpec:
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
        timeout_seconds=claim.spec.timeout_seconds,
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
