"""ComfyUIEngine against the stand-in: dropped sockets and re-dispatched prompts."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

from tests.comfyui.helpers import FAST, RecordingSink, held_at, sleepy, spec_for, trivial
from tests.comfyui.standin import ComfyStandin
from tests.comfyui.standin_state import StandinState
from tests.support.waiting import DEADLINE
from wfrun.engines.comfyui import ComfyClient, ComfyUIEngine
from wfrun.engines.comfyui.events import ComfyEvent
from wfrun.engines.comfyui.progress import ProgressTracker
from wfrun.engines.comfyui.session import InstanceSession
from wfrun.engines.comfyui.watch import PromptWatch, Submission


async def test_socket_dropped_mid_run_and_reestablished_still_completes(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    sink = RecordingSink()
    spec = spec_for(standin, sleepy(0))
    await standin.hold(running=True, node="2")
    task = asyncio.create_task(engine.execute(spec, sink, threading.Event()))
    await held_at(standin, spec, sink)
    await standin.drop_sockets()
    await standin.wait_for(lambda state: _reconnected(state, engine.client_id))
    await standin.release()
    results = await asyncio.wait_for(task, DEADLINE)
    assert results["3"].files
    assert sink.finished() == ["1", "2", "3"]
    again = await engine.execute(spec_for(standin, trivial()), RecordingSink(), threading.Event())
    assert again["3"].files
    (fresh,) = await standin.call(lambda state: list(state.sockets))
    assert fresh.startswith(f"{engine.client_id}-")  # a fresh clientId, never the old one
    assert standin.calls("POST", "/prompt")[-1].json()["client_id"] == fresh


def _reconnected(state: StandinState, client_id: str) -> bool:
    """The engine's socket is back, under a fresh clientId."""
    return any(sid.startswith(f"{client_id}-") for sid in state.sockets)


async def test_redispatch_attaches_to_a_running_prompt(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    prompt_id = str(uuid.uuid4())
    earlier_worker = ComfyClient(standin.base_url)
    try:
        await earlier_worker.queue_prompt(
            sleepy(0.5), prompt_id=prompt_id, client_id="crashed-worker"
        )
    finally:
        await earlier_worker.aclose()
    sink = RecordingSink()
    spec = spec_for(standin, sleepy(0.5), prompt_id=prompt_id)
    results = await engine.execute(spec, sink, threading.Event())
    assert results["3"].files[0].filename == "wf_sleep_00001_.png"
    assert len(standin.calls("POST", "/prompt")) == 1  # the earlier worker's only
    assert sink.finished() == ["1", "2", "3"]


async def test_redispatch_after_completion_reads_the_result(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    spec = spec_for(standin, trivial())
    first = await engine.execute(spec, RecordingSink(), threading.Event())
    second = await engine.execute(spec, RecordingSink(), threading.Event())
    assert second == first
    assert len(standin.calls("POST", "/prompt")) == 1


async def test_redispatch_after_an_interruption_runs_again(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    spec = spec_for(standin, sleepy(5.0))
    await standin.hold(running=True, node="2")
    sink = RecordingSink()
    task = asyncio.create_task(engine.execute(spec, sink, threading.Event()))
    await held_at(standin, spec, sink)
    task.cancel()  # e.g. the worker shut down: the prompt is withdrawn
    await asyncio.gather(task, return_exceptions=True)
    await standin.wait_for(lambda state: spec.engine_prompt_id in state.history)
    await standin.release()
    quick = spec_for(standin, sleepy(0.1), prompt_id=spec.engine_prompt_id)
    results = await engine.execute(quick, RecordingSink(), threading.Event())
    assert results["3"].files
    assert [r.json() for r in standin.calls("POST", "/history")] == [
        {"delete": [spec.engine_prompt_id]}
    ]
    assert len(standin.calls("POST", "/prompt")) == 2


async def test_frames_of_a_replaced_run_are_ignored(standin: ComfyStandin) -> None:
    """A reused prompt id may still receive the old (interrupted) run's frames."""
    session = InstanceSession(standin.base_url, "watcher", FAST)
    prompt_id = str(uuid.uuid4())
    try:
        await session.client.queue_prompt(sleepy(0.2), prompt_id=prompt_id, client_id="x")
        inbox = session.channel.subscribe(prompt_id)
        stale: list[tuple[str, dict[str, Any]]] = [
            ("execution_start", {"prompt_id": prompt_id, "timestamp": 1}),
            ("execution_interrupted", {"prompt_id": prompt_id, "node_id": "2"}),
            ("executing", {"node": None, "prompt_id": prompt_id}),
        ]
        for kind, data in stale:
            inbox.put_nowait(ComfyEvent(kind, data))
        sink = RecordingSink()
        tracker = ProgressTracker(sleepy(0.2), ["1", "2", "3"], sink)
        submission = Submission(prompt_id, 1, replaced_start=1, replaced=True)
        watch = PromptWatch(session, submission, inbox, tracker, threading.Event(), 1e12)
        outcome = await asyncio.wait_for(watch.wait(), DEADLINE)
    finally:
        await session.aclose()
    assert outcome.status == "success"
    assert sink.finished() == ["1", "2", "3"]
