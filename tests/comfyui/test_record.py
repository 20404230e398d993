"""``record.EventRecord``: a prompt's events stand in for its history entry only when they tell
the whole success (both timestamps, every ``executed`` readable); else the watch reads history."""

from __future__ import annotations

from typing import Any

from wfrun.engines.comfyui.events import ComfyEvent, FileRef, HistoryOutcome, UiOutput
from wfrun.engines.comfyui.record import EventRecord

PROMPT = "5b0b7d7e-6f0e-4a43-9a55-1b7c1f0c2b11"
IMAGE = {"images": [{"filename": "wf_00001_.png", "subfolder": "", "type": "output"}]}


def event(kind: str, **data: Any) -> ComfyEvent:
    return ComfyEvent(kind, {"prompt_id": PROMPT, **data})


def recorded(*events: ComfyEvent) -> HistoryOutcome | None:
    record = EventRecord()
    for item in events:
        record.add(item)
    return record.outcome()


def test_a_whole_success_is_its_outputs_and_its_engine_time() -> None:
    outcome = recorded(
        event("execution_start", timestamp=1_000),
        event("execution_cached", nodes=[], timestamp=1_001),
        event("executing", node="3"),
        event("executed", node="3", display_node="3", output=IMAGE),
        event("executed", node="4", output={"text": ["hello"]}),
        event("executed", node="5", output={}),  # nothing to show: not an output
        event("execution_success", timestamp=1_250),
        event("executing", node=None),
    )
    assert outcome == HistoryOutcome(
        "success",
        {
            "3": UiOutput(files=(FileRef("wf_00001_.png", "", "output"),)),
            "4": UiOutput(text=("hello",)),
        },
        duration_ms=250,
    )


def test_a_second_start_forgets_what_the_first_execution_showed() -> None:
    outcome = recorded(
        event("execution_start", timestamp=1_000),
        event("executed", node="3", output=IMAGE),
        event("execution_start", timestamp=2_000),
        event("execution_success", timestamp=2_040),
    )
    assert outcome == HistoryOutcome("success", {}, duration_ms=40)


def test_anything_less_than_the_whole_story_reads_history() -> None:
    start, success = event("execution_start", timestamp=1), event("execution_success", timestamp=2)
    assert recorded(success) is None  # the start came before the watch
    assert recorded(start) is None  # no success (yet)
    assert recorded(event("execution_start"), success) is None  # no timestamp
    assert recorded(start, event("execution_success", timestamp=True)) is None
    assert recorded(start, event("executed", node="3", output=None), success) is None
    assert recorded(start, event("executed", output=IMAGE), success) is None
