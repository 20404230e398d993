"""Golden tests of events.py (and the progress tracker) against the recorded captures."""

from __future__ import annotations

from typing import Any

import pytest

from tests.comfyui.captures import frames, load
from tests.comfyui.helpers import RecordingSink
from wfrun.engines.comfyui.events import (
    EXECUTION_FAILED,
    VALIDATION_FAILED,
    ComfyEvent,
    FileRef,
    describe_execution_error,
    describe_rejection,
    parse_history_entry,
    parse_message,
    parse_ui_output,
)
from wfrun.engines.comfyui.progress import ProgressTracker

TRIVIAL = {
    "1": {"class_type": "EmptyImage", "inputs": {}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}},
}


def events(entries: list[Any]) -> list[ComfyEvent]:
    parsed = [parse_message(frame) for frame in frames(entries)]
    return [event for event in parsed if event is not None]


def rejection(name: str) -> dict[str, Any]:
    capture = load("core")[name]
    response = capture.get("response", capture)
    reply: dict[str, Any] = response["json"]
    return reply


def test_every_recorded_text_frame_parses_and_binary_frames_are_ignored() -> None:
    entries = load("extra")["ws_image_plain_client"]
    parsed = [parse_message(frame) for frame in frames(entries)]
    kinds = [entry[1] for entry in entries]
    assert [event is None for event in parsed] == [kind == "binary" for kind in kinds]
    assert parse_message("not json") is None
    assert parse_message('{"type": 1, "data": {}}') is None
    assert parse_message('["status"]') is None


def test_trivial_run_events_carry_prompt_and_node() -> None:
    trivial = load("core")["trivial"]
    parsed = events(trivial["ws_A"])
    prompt_id = trivial["prompt_id"]
    assert [e.type for e in parsed][:4] == [
        "status",
        "status",
        "execution_start",
        "execution_cached",
    ]
    assert parsed[0].prompt_id is None
    executing = [e.node for e in parsed if e.type == "executing"]
    assert executing == ["1", "2", "3", None]
    assert parsed[-1].is_prompt_done
    assert parsed[-1].prompt_id == prompt_id
    assert not any(e.is_prompt_done for e in parsed[:-1])
    finished = [e.finished_nodes() for e in parsed if e.type == "progress_state"]
    assert finished[-1] == ("1", "2", "3")


def test_reconnect_executing_without_prompt_id_is_not_a_completion() -> None:
    parsed = events(load("queue")["reconnect_first_msgs"])
    first_executing = next(e for e in parsed if e.type == "executing")
    assert first_executing.node == "2"
    assert first_executing.prompt_id is None
    assert not first_executing.is_prompt_done


def test_cached_resubmission_lists_every_node() -> None:
    parsed = events(load("core")["trivial_resubmit_cached"]["ws_A"])
    cached = next(e for e in parsed if e.type == "execution_cached")
    assert cached.cached_nodes() == ("1", "2", "3")
    assert [e.node for e in parsed if e.type == "executing"] == [None]


@pytest.mark.parametrize(
    ("capture", "node_id", "fragments"),
    [
        ("validation_invalid_input_type", "1", ["node 1 (EmptyImage) input 'width'", "abc"]),
        ("validation_value_not_in_list", "11", ["node 11 (ImageScale) input 'upscale_method'"]),
        ("validation_return_type_mismatch", "12", ["received_type(MASK)", "(SaveImage)"]),
        ("validation_required_input_missing", "1", ["Required input is missing", "'height'"]),
        ("validation_value_bigger_than_max", "1", ["Value 99999 bigger than max of 16384"]),
        ("validation_value_smaller_than_min", "1", ["Value 0 smaller than min of 1"]),
        ("validation_loadimage_missing_file", "10", ["Invalid image file: missing_file.png"]),
        ("validation_missing_node_class", "2", ["node DoesNotExist does not exist"]),
        ("validation_missing_class_type", "2", ["missing the class_type property"]),
        ("validation_no_outputs", None, ["prompt_no_outputs", "Prompt has no outputs"]),
        ("validation_no_prompt_key", None, ["No prompt provided"]),
    ],
)
def test_rejections_name_node_class_and_input(
    capture: str, node_id: str | None, fragments: list[str]
) -> None:
    reply = rejection(capture)
    failure = describe_rejection(reply["error"], reply["node_errors"])
    assert failure.code == VALIDATION_FAILED
    assert failure.node_id == node_id
    for fragment in fragments:
        assert fragment in failure.message


def test_inner_validation_errors_do_not_blame_the_consumers_input() -> None:
    reply = rejection("validation_link_to_missing_node")
    failure = describe_rejection(reply["error"], reply["node_errors"])
    assert failure.node_id == "2"
    assert "node 2 (ImageInvert): Exception when validating inner node: '99'" in failure.message
    assert "'images'" not in failure.message


def test_partly_valid_prompt_node_errors_are_described() -> None:
    post = load("core")["validation_partial_one_output_bad"]["result"]["post"]
    assert post["status"] == 200
    failure = describe_rejection({}, post["json"]["node_errors"])
    assert failure.node_id == "5"
    assert "node 5 (ImageInvert)" in failure.message
    assert "tuple index out of range" in failure.message


@pytest.mark.parametrize(
    ("capture", "node_id", "fragments"),
    [
        (
            "execution_error_corrupt_png",
            "10",
            ["node 10 (LoadImage) failed", "PIL.UnidentifiedImageError", "cannot identify image"],
        ),
        ("execution_error_huge_alloc", "1", ["node 1 (EmptyImage)", "RuntimeError", "allocate"]),
    ],
)
def test_execution_errors_from_history(capture: str, node_id: str, fragments: list[str]) -> None:
    recorded = load("core")[capture]
    outcome = parse_history_entry(recorded["history"][recorded["prompt_id"]])
    assert outcome.status == "error"
    assert outcome.outputs == {}
    failure = outcome.failure()
    assert (failure.code, failure.node_id) == (EXECUTION_FAILED, node_id)
    for fragment in fragments:
        assert fragment in failure.message
    assert not failure.message.endswith("\n")


def test_execution_error_event_of_a_test_node() -> None:
    parsed = events(load("queue")["sync_error"]["ws"])
    error = next(e for e in parsed if e.type == "execution_error")
    failure = describe_execution_error(error.data)
    assert failure.node_id == "2"
    assert failure.message == (
        "node 2 (TestSyncError) failed: RuntimeError: Intentional sync execution error for testing"
    )


def test_successful_history_lists_output_files() -> None:
    trivial = load("core")["trivial"]
    outcome = parse_history_entry(trivial["history"][trivial["prompt_id"]])
    assert outcome.status == "success"
    assert outcome.outputs["3"].files == (FileRef("lab_trivial_00001_.png", "", "output"),)


def test_interrupted_history_is_not_an_error() -> None:
    recorded = load("queue")
    (entry,) = recorded["history_interrupted"].values()
    outcome = parse_history_entry(entry)
    assert outcome.status == "interrupted"
    assert outcome.detail["node_type"] == "TestSleep"
    assert parse_history_entry(recorded["history_interrupted_global"]).status == "interrupted"


def test_websocket_only_outputs_leave_history_empty() -> None:
    outcome = parse_history_entry(load("extra")["ws_image_plain_history"])
    assert outcome.status == "success"
    assert outcome.outputs == {}


def test_preview_and_batch_outputs() -> None:
    outputs = load("extra")["preview_and_batch_history_outputs"]
    preview = parse_ui_output(outputs["2"])
    assert [f.type for f in preview.files] == ["temp", "temp"]
    assert parse_ui_output({"text": ["hello"], "animated": [True]}).text == ("hello",)
    audio = parse_ui_output({"audio": [{"filename": "a.flac", "subfolder": "x", "type": "output"}]})
    assert audio.files == (FileRef("a.flac", "x", "output"),)


async def test_tracker_on_the_trivial_capture() -> None:
    sink = RecordingSink()
    tracker = ProgressTracker(TRIVIAL, ["1", "2", "3"], sink)
    for event in events(load("core")["trivial"]["ws_A"]):
        await tracker.on_event(event)
    assert sink.calls == [
        ("started", "1", "EmptyImage", 0, 3),
        ("finished", "1", "EmptyImage", 0, 3),
        ("started", "2", "ImageInvert", 1, 3),
        ("finished", "2", "ImageInvert", 1, 3),
        ("started", "3", "SaveImage", 2, 3),
        ("finished", "3", "SaveImage", 2, 3),
    ]


async def test_tracker_counts_cached_nodes_as_finished() -> None:
    sink = RecordingSink()
    tracker = ProgressTracker(TRIVIAL, ["1", "2", "3"], sink)
    for event in events(load("core")["trivial_resubmit_cached"]["ws_A"]):
        await tracker.on_event(event)
    assert sink.calls == [
        ("finished", "1", "EmptyImage", 0, 3),
        ("finished", "2", "ImageInvert", 1, 3),
        ("finished", "3", "SaveImage", 2, 3),
    ]


async def test_tracker_without_progress_state_uses_executing_and_completion() -> None:
    sink = RecordingSink()
    graph = dict(TRIVIAL, **{"2": {"class_type": "TestSleep", "inputs": {"value": ["1", 0]}}})
    tracker = ProgressTracker(graph, ["1", "2", "3"], sink)
    recorded = load("queue")["progress_run"]["ws_first_40"]
    for event in events(recorded):
        if event.type != "progress_state":
            await tracker.on_event(event)
    assert sink.finished() == ["1"]
    await tracker.complete()
    assert sink.finished() == ["1", "2", "3"]
    assert sink.calls[-1] == ("finished", "3", "SaveImage", 2, 3)
