"""ComfyUIEngine against the stand-in: successful runs, progress, outputs, shared socket."""

from __future__ import annotations

import asyncio
import threading

from tests.comfyui.helpers import (
    RecordingSink,
    load_and_save,
    node,
    png,
    run_locally,
    spec_for,
    trivial,
)
from tests.comfyui.standin import ComfyStandin
from tests.support.waiting import until_true
from wfrun.engines.base import Engine
from wfrun.engines.comfyui import ComfyUIEngine


def history_reads_after_submit(standin: ComfyStandin, prompt_id: str | None) -> list[str]:
    """``GET /history/<prompt_id>`` after the prompt's ``POST /prompt`` (before it: the
    re-dispatch lookups of a spec that is not a first dispatch)."""
    assert prompt_id is not None
    paths = [(r.method, r.path.removeprefix("/api"), r.body) for r in list(standin.requests)]
    posted = next(
        i
        for i, (method, path, body) in enumerate(paths)
        if (method, path) == ("POST", "/prompt") and prompt_id.encode() in body
    )
    return [path for method, path, _ in paths[posted:] if path == f"/history/{prompt_id}"]


async def test_implements_the_engine_port() -> None:
    engine: Engine = ComfyUIEngine("wfrun-port")  # checked by mypy; connects to nothing
    assert isinstance(engine, ComfyUIEngine)
    await engine.aclose()


async def test_success_reports_progress_in_order_and_returns_the_local_engines_png(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    sink = RecordingSink()
    spec = spec_for(standin, trivial())
    results = await engine.execute(spec, sink, threading.Event())
    assert sink.calls == [
        ("started", "1", "EmptyImage", 0, 3),
        ("finished", "1", "EmptyImage", 0, 3),
        ("started", "2", "ImageInvert", 1, 3),
        ("finished", "2", "ImageInvert", 1, 3),
        ("started", "3", "SaveImage", 2, 3),
        ("finished", "3", "SaveImage", 2, 3),
    ]
    local = await run_locally(trivial())
    (output,) = results["3"].files
    assert (output.filename, output.mime_type) == ("wf_trivial_00001_.png", "image/png")
    assert output.data == local["3"].files[0].data
    (post,) = standin.calls("POST", "/prompt")
    assert post.json()["prompt_id"] == spec.engine_prompt_id
    assert post.json()["client_id"] == engine.client_id
    assert all("origin" not in request.headers for request in standin.requests)
    # watched from its start: concluded from its own events, history not read once queued
    assert not history_reads_after_submit(standin, spec.engine_prompt_id)


async def test_cached_rerun_counts_cached_nodes_as_finished(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    first = await engine.execute(spec_for(standin, trivial()), RecordingSink(), threading.Event())
    sink = RecordingSink()
    spec = spec_for(standin, trivial())
    again = await engine.execute(spec, sink, threading.Event())
    assert not history_reads_after_submit(standin, spec.engine_prompt_id)  # ``executed`` re-sent
    assert sink.calls == [
        ("finished", "1", "EmptyImage", 0, 3),
        ("finished", "2", "ImageInvert", 1, 3),
        ("finished", "3", "SaveImage", 2, 3),
    ]
    assert again == first


async def test_media_are_uploaded_under_content_names_and_rewritten(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    media = {"wfrun_n1_image_0.png": png(6, 4, (200, 100, 50))}
    graph = load_and_save("wfrun_n1_image_0.png")
    results = await engine.execute(
        spec_for(standin, graph, media=media), RecordingSink(), threading.Event()
    )
    (upload,) = standin.calls("POST", "/upload/image")
    assert b'name="overwrite"\r\n\r\ntrue' in upload.body
    submitted = standin.calls("POST", "/prompt")[0].json()["prompt"]
    stored = submitted["10"]["inputs"]["image"]
    assert stored.startswith("wfrun/")
    assert stored.endswith("-wfrun_n1_image_0.png")
    assert graph["10"]["inputs"]["image"] == "wfrun_n1_image_0.png"  # the spec is untouched
    # The PNG embeds the submitted graph, so compare with a local run of that graph.
    local = await run_locally(submitted, {stored: media["wfrun_n1_image_0.png"]})
    assert results["12"].files[0].data == local["12"].files[0].data


async def test_text_and_preview_outputs(standin: ComfyStandin, engine: ComfyUIEngine) -> None:
    graph = {
        "1": node("PrimitiveString", value="hello"),
        "2": node("PreviewAny", source=["1", 0]),
        "3": node("EmptyImage", width=4, height=4, batch_size=2, color=0),
        "4": node("PreviewImage", images=["3", 0]),
        "5": node("PrimitiveInt", value=3),  # feeds no output: never runs
    }
    sink = RecordingSink()
    results = await engine.execute(spec_for(standin, graph), sink, threading.Event())
    assert results["2"].text == ("hello",)
    names = [f.filename for f in results["4"].files]
    assert len(names) == 2
    assert all(n.startswith("ComfyUI_temp_") for n in names)
    assert {call[4] for call in sink.calls} == {4}
    assert sorted(sink.finished()) == ["1", "2", "3", "4"]


async def test_many_concurrent_runs_share_one_socket(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    specs = [spec_for(standin, trivial(f"wf_many{i}", color=i)) for i in range(6)]
    sinks = [RecordingSink() for _ in specs]
    runs = [engine.execute(s, k, threading.Event()) for s, k in zip(specs, sinks, strict=True)]
    results = await asyncio.gather(*runs)
    for index, result in enumerate(results):
        assert result["3"].files[0].filename == f"wf_many{index}_00001_.png"
    assert all(len(sink.finished()) == 3 for sink in sinks)
    sockets = await standin.call(lambda state: sorted(state.sockets))
    assert sockets == [engine.client_id]


async def test_stalled_server_replies_are_tolerated(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    standin.reply_delay = 0.5  # every HTTP reply stalls
    results = await engine.execute(spec_for(standin, trivial()), RecordingSink(), threading.Event())
    assert results["3"].files
    assert len(standin.requests) >= 3  # several stalled round trips


async def test_frozen_server_loop_mid_run_is_tolerated(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    sink = RecordingSink()
    graph = trivial() | {"2": node("TestSleep", value=["1", 0], seconds=0.3)}
    task = asyncio.create_task(engine.execute(spec_for(standin, graph), sink, threading.Event()))
    await until_true(lambda: sink.calls, what="the first node to start")
    standin.freeze(0.6)
    results = await task
    assert results["3"].files
    assert sink.finished() == ["1", "2", "3"]
