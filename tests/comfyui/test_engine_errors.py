"""ComfyUIEngine against the stand-in: validation and execution failures, lost instances."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.comfyui.helpers import RecordingSink, load_and_save, node, sleepy, spec_for, trivial
from tests.comfyui.standin import ComfyStandin
from tests.support.waiting import DEADLINE
from wfrun.engines.base import EnginePermanent, EngineTransient
from wfrun.engines.comfyui import ComfyUIEngine


async def test_bad_combo_is_a_validation_failure_naming_node_and_input(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    graph = load_and_save("in.png")
    graph["11"]["inputs"]["upscale_method"] = "foo"
    spec = spec_for(standin, graph, media={"in.png": b"\x89PNG not really"})
    with pytest.raises(EnginePermanent) as caught:
        await engine.execute(spec, RecordingSink(), threading.Event())
    error = caught.value
    assert (error.code.name, error.node_id) == ("ENGINE_VALIDATION_FAILED", "11")
    assert "node 11 (ImageScale) input 'upscale_method': Value not in list" in error.message
    assert "'foo' not in" in error.message


async def test_unknown_class_is_a_validation_failure(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    graph = trivial()
    graph["2"]["class_type"] = "DoesNotExist"
    with pytest.raises(EnginePermanent) as caught:
        await engine.execute(spec_for(standin, graph), RecordingSink(), threading.Event())
    assert (caught.value.code.name, caught.value.node_id) == ("ENGINE_VALIDATION_FAILED", "2")
    assert "DoesNotExist does not exist" in caught.value.message


async def test_dropped_outputs_reject_the_run_and_withdraw_the_prompt(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    graph = trivial() | {
        "4": node("SaveImage", images=["5", 0], filename_prefix="x"),
        "5": node("ImageInvert", image=["1", 1]),
        "2": node("TestSleep", value=["1", 0], seconds=2.0),
    }
    spec = spec_for(standin, graph)
    await standin.hold(running=True, node="2")  # it cannot end before the engine withdraws it
    with pytest.raises(EnginePermanent) as caught:
        await engine.execute(spec, RecordingSink(), threading.Event())
    assert (caught.value.code.name, caught.value.node_id) == ("ENGINE_VALIDATION_FAILED", "5")
    assert [r.json() for r in standin.calls("POST", "/queue")] == [
        {"delete": [spec.engine_prompt_id]}
    ]
    assert standin.calls("POST", "/interrupt")[0].json() == {"prompt_id": spec.engine_prompt_id}
    await standin.wait_for(lambda state: state.running is None and not state.heap)
    entry = await standin.call(lambda state: state.history.get(str(spec.engine_prompt_id)))
    assert entry is None or entry["status"]["messages"][-1][0] == "execution_interrupted"


async def test_corrupt_png_is_an_execution_failure_naming_the_node(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    spec = spec_for(standin, load_and_save("in.png"), media={"in.png": b"not a png at all"})
    sink = RecordingSink()
    with pytest.raises(EnginePermanent) as caught:
        await engine.execute(spec, sink, threading.Event())
    error = caught.value
    assert (error.code.name, error.node_id) == ("ENGINE_EXECUTION_FAILED", "10")
    assert error.message.startswith("node 10 (LoadImage) failed: PIL.UnidentifiedImageError:")
    assert sink.calls == [("started", "10", "LoadImage", 0, 3)]


async def test_instance_down_before_dispatch_is_transient(
    standin: ComfyStandin, patient_engine: ComfyUIEngine
) -> None:
    """Nothing was dispatched, so the engine gives the run back at once: it does not wait out
    the (here one-hour) grace for an instance that goes away mid-run."""
    await standin.stop()
    spec = spec_for(standin, trivial())
    with pytest.raises(EngineTransient) as caught:
        await asyncio.wait_for(
            patient_engine.execute(spec, RecordingSink(), threading.Event()), DEADLINE
        )
    assert "unreachable" in caught.value.message
    await standin.start()
    again = spec_for(standin, trivial())
    results = await patient_engine.execute(again, RecordingSink(), threading.Event())
    assert results["3"].files


async def test_restart_mid_run_is_transient_not_a_hang(
    standin: ComfyStandin, patient_engine: ComfyUIEngine
) -> None:
    """The prompt died with the instance (held at node 2, it could never end by itself): the
    engine notices it is gone and gives the run back; a patient engine shows it does so
    without any of its give-up timers (the run's limit is far beyond the deadline too)."""
    spec = spec_for(standin, sleepy(5.0), timeout=3600.0)
    await standin.hold(running=True, node="2")
    task = asyncio.create_task(patient_engine.execute(spec, RecordingSink(), threading.Event()))
    await standin.wait_held(spec.engine_prompt_id)
    await standin.crash_restart()
    with pytest.raises(EngineTransient) as caught:
        await asyncio.wait_for(task, DEADLINE)
    assert "lost the prompt" in caught.value.message


async def test_instance_gone_for_good_mid_run_is_transient(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    spec = spec_for(standin, sleepy(5.0))
    await standin.hold(running=True, node="2")
    task = asyncio.create_task(engine.execute(spec, RecordingSink(), threading.Event()))
    await standin.wait_held(spec.engine_prompt_id)
    await standin.stop()  # and it stays down
    with pytest.raises(EngineTransient) as caught:
        await task
    assert "stayed unreachable" in caught.value.message


async def test_time_limit_withdraws_the_prompt(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    spec = spec_for(standin, sleepy(5.0), timeout=0.8)
    await standin.hold(running=True, node="2")  # never released: only the limit ends it
    with pytest.raises(EnginePermanent) as caught:
        await engine.execute(spec, RecordingSink(), threading.Event())
    assert caught.value.code.name == "ENGINE_TIMEOUT"
    assert {"prompt_id": spec.engine_prompt_id} in [
        r.json() for r in standin.calls("POST", "/interrupt")
    ]
    await standin.wait_for(lambda state: spec.engine_prompt_id in state.history)


async def test_interrupt_by_someone_else_is_transient(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    spec = spec_for(standin, sleepy(5.0))
    await standin.hold(running=True, node="2")
    task = asyncio.create_task(engine.execute(spec, RecordingSink(), threading.Event()))
    await standin.wait_held(spec.engine_prompt_id)
    await standin.call(lambda state: state.interrupt(None))  # a global POST /interrupt
    with pytest.raises(EngineTransient) as caught:
        await task
    assert "(interrupted at node 2 (TestSleep)) without wfrun asking" in caught.value.message
