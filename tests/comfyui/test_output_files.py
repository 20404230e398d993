"""Output files fetched early (issue 11, ``engines/comfyui/outputs``): an ``executed`` event
starts its files' downloads before the history is read; the history stays the authority (a
file no event announced is fetched then; a failed early download is tried again); every file
of a run is fetched once, in the history's order, a few at a time."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.comfyui.helpers import FAST, RecordingSink, node, run_locally, spec_for, trivial
from tests.comfyui.standin import ComfyStandin
from tests.support.waiting import until_true
from wfrun.engines.comfyui import ComfyProtocolError, ComfyUIEngine
from wfrun.engines.comfyui.events import ComfyEvent, FileRef, parse_history_entry
from wfrun.engines.comfyui.outputs import OutputFiles
from wfrun.engines.comfyui.session import InstanceSession


def batch(size: int) -> dict[str, Any]:
    """EmptyImage (a batch of ``size``) → ImageInvert → SaveImage: ``size`` files."""
    graph = trivial("wf_batch")
    graph["1"] = node("EmptyImage", width=8, height=8, batch_size=size, color=0x00FF00)
    return graph


@pytest.fixture
async def session(standin: ComfyStandin) -> AsyncIterator[InstanceSession]:
    instance = InstanceSession(standin.base_url, "wfrun-outputs", FAST)
    try:
        yield instance
    finally:
        await instance.aclose()


async def saved_files(
    standin: ComfyStandin, engine: ComfyUIEngine, session: InstanceSession
) -> tuple[FileRef, ...]:
    """Runs the trivial graph once; the files its history lists."""
    spec = spec_for(standin, trivial())
    await engine.execute(spec, RecordingSink(), threading.Event())
    assert spec.engine_prompt_id is not None
    entry = await session.client.history(spec.engine_prompt_id)
    assert entry is not None
    return parse_history_entry(entry).outputs["3"].files


def executed(*refs: FileRef) -> ComfyEvent:
    images = [{"filename": r.filename, "subfolder": r.subfolder, "type": r.type} for r in refs]
    return ComfyEvent("executed", {"node": "3", "prompt_id": "p", "output": {"images": images}})


async def test_an_executed_event_starts_the_download_and_fetch_takes_it(
    standin: ComfyStandin, engine: ComfyUIEngine, session: InstanceSession
) -> None:
    (ref,) = await saved_files(standin, engine, session)
    before = len(standin.calls("GET", "/view"))
    files = OutputFiles(session)
    try:
        files.on_event(executed(ref))
        files.on_event(executed(ref))  # a cached output node re-sends it: still one download
        await until_true(
            lambda: len(standin.calls("GET", "/view")) == before + 1,
            what="the download the event started, before anyone asked for the file",
        )
        data = await files.fetch(ref)
    finally:
        files.close()
    assert data == (await run_locally(trivial()))["3"].files[0].data
    assert len(standin.calls("GET", "/view")) == before + 1  # fetch took the early download


async def test_files_no_event_announced_or_whose_download_failed_are_fetched_then(
    standin: ComfyStandin, engine: ComfyUIEngine, session: InstanceSession
) -> None:
    (ref,) = await saved_files(standin, engine, session)
    gone = FileRef("no_such_file.png")
    before = len(standin.calls("GET", "/view"))
    files = OutputFiles(session)
    try:
        files.on_event(executed(gone))
        await until_true(
            lambda: len(standin.calls("GET", "/view")) == before + 1,
            what="the early download of a file the server does not have",
        )
        with pytest.raises(ComfyProtocolError) as refused:
            await files.fetch(gone)  # tried again the ordinary way: its 404 is the caller's
        assert refused.value.status == 404
        assert await files.fetch(ref) == (await run_locally(trivial()))["3"].files[0].data
    finally:
        files.close()
    assert len(standin.calls("GET", "/view")) == before + 3


async def test_a_run_fetches_each_file_once_in_the_historys_order(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    results = await engine.execute(spec_for(standin, batch(6)), RecordingSink(), threading.Event())
    local = await run_locally(batch(6))
    assert [f.filename for f in results["3"].files] == [f.filename for f in local["3"].files]
    assert [f.data for f in results["3"].files] == [f.data for f in local["3"].files]
    views = [r.query for r in standin.calls("GET", "/view")]
    assert sorted(views) == sorted(set(views)), views  # each file once
    assert len(views) == 6
