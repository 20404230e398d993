"""ComfyUIEngine against the stand-in: cancelling pending and running prompts."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.comfyui.helpers import RecordingSink, held_at, node, sleepy, spec_for, trivial
from tests.comfyui.standin import ComfyStandin
from tests.support.waiting import DEADLINE
from wfrun.engines.base import EngineInterrupted
from wfrun.engines.comfyui import ComfyUIEngine


async def test_cancel_while_pending_deletes_it_from_the_queue(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    await standin.hold(running=True)  # the first prompt stops at its first node
    first = spec_for(standin, trivial("wf_first"))
    running = asyncio.create_task(engine.execute(first, RecordingSink(), threading.Event()))
    await standin.wait_held(first.engine_prompt_id)
    second, interrupt = spec_for(standin, trivial()), threading.Event()
    pending = asyncio.create_task(engine.execute(second, RecordingSink(), interrupt))
    await standin.wait_for(
        lambda state: [i.prompt_id for i in state.pending()] == [second.engine_prompt_id]
    )
    interrupt.set()
    with pytest.raises(EngineInterrupted):
        await pending
    assert {"delete": [second.engine_prompt_id]} in [
        r.json() for r in standin.calls("POST", "/queue")
    ]
    assert not standin.calls("POST", "/interrupt")
    await standin.release()
    assert (await running)["3"].files  # the running prompt was left alone
    assert await standin.call(lambda state: second.engine_prompt_id not in state.history)


async def test_cancel_while_running_interrupts_it(
    standin: ComfyStandin, patient_engine: ComfyUIEngine
) -> None:
    sink, interrupt = RecordingSink(), threading.Event()
    spec = spec_for(standin, sleepy(5.0))
    await standin.hold(running=True, node="2")  # never released: only /interrupt ends it
    task = asyncio.create_task(patient_engine.execute(spec, sink, interrupt))
    await held_at(standin, spec, sink)
    assert ("started", "2", "TestSleep", 1, 3) in sink.calls
    interrupt.set()
    with pytest.raises(EngineInterrupted):  # the patient engine waits for the confirmation
        await asyncio.wait_for(task, DEADLINE)
    assert [r.json() for r in standin.calls("POST", "/interrupt")] == [
        {"prompt_id": spec.engine_prompt_id}
    ]
    assert not standin.calls("POST", "/queue")
    entry = await standin.call(lambda state: state.history[str(spec.engine_prompt_id)])
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"


async def test_an_interrupted_prompt_hands_back_the_outputs_it_finished(
    standin: ComfyStandin, patient_engine: ComfyUIEngine
) -> None:
    """ComfyUI's history of an interrupted prompt keeps the UI of the output nodes that ran
    (its ``history_result`` is built from the UI cache after the loop); the engine fetches
    them, so a run stopped at its cost limit keeps what it made."""
    graph = {  # the early save runs before the sleep (lower id first among ready nodes)
        "1": node("EmptyImage", width=16, height=16, batch_size=1, color=0),
        "2": node("SaveImage", images=["1", 0], filename_prefix="wf_early"),
        "3": node("TestSleep", value=["1", 0], seconds=5.0),
        "4": node("SaveImage", images=["3", 0], filename_prefix="wf_late"),
    }
    sink, interrupt = RecordingSink(), threading.Event()
    spec = spec_for(standin, graph)
    await standin.hold(running=True, node="3")  # never released: only /interrupt ends it
    task = asyncio.create_task(patient_engine.execute(spec, sink, interrupt))
    await held_at(standin, spec, sink, node_id="3")
    interrupt.set()
    with pytest.raises(EngineInterrupted) as stopped:
        await asyncio.wait_for(task, DEADLINE)
    assert set(stopped.value.finished) == {"2"}  # node 4 (after the sleep) never ran
    (early,) = stopped.value.finished["2"].files
    assert early.filename.startswith("wf_early")
    assert early.data[:8] == b"\x89PNG\r\n\x1a\n"


async def test_interrupt_before_dispatch_submits_nothing(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    interrupt = threading.Event()
    interrupt.set()
    with pytest.raises(EngineInterrupted):
        await engine.execute(spec_for(standin, trivial()), RecordingSink(), interrupt)
    assert not standin.calls("POST", "/prompt")


async def test_cancelled_task_withdraws_the_prompt(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    spec = spec_for(standin, sleepy(5.0))
    await standin.hold(running=True, node="2")  # never released: only /interrupt ends it
    sink = RecordingSink()
    task = asyncio.create_task(engine.execute(spec, sink, threading.Event()))
    await held_at(standin, spec, sink)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await standin.wait_for(lambda state: spec.engine_prompt_id in state.history)
    assert {"prompt_id": spec.engine_prompt_id} in [
        r.json() for r in standin.calls("POST", "/interrupt")
    ]
