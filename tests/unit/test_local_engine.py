"""Tests of the built-in local engine (ComfyUI API-format graphs on Pillow)."""

from __future__ import annotations

import asyncio
import io
import json
import math
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from PIL import Image

from tests.support.waiting import DEADLINE, until_sync, until_true
from wfrun.engines.local import images
from wfrun.engines.local.context import NodeContext
from wfrun.engines.local.executor import (
    GraphInvalid,
    Interrupted,
    NodeFailed,
    NodeOutput,
    OutputFile,
    execute_graph,
    validate_graph,
)
from wfrun.engines.local.nodes import NODE_SPECS, object_info

Graph = dict[str, Any]


class RecordingHooks:
    """Hooks that record every call."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, int, int]] = []

    async def node_started(self, node_id: str, class_type: str, index: int, total: int) -> None:
        self.events.append(("started", node_id, class_type, index, total))

    async def node_finished(self, node_id: str, class_type: str, index: int, total: int) -> None:
        self.events.append(("finished", node_id, class_type, index, total))


class FailingHooks(RecordingHooks):
    async def node_started(self, node_id: str, class_type: str, index: int, total: int) -> None:
        raise LookupError(f"abort at {node_id}")


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def empty(width: int = 8, height: int = 4, color: int = 0, batch_size: int = 1) -> dict[str, Any]:
    return node("EmptyImage", width=width, height=height, batch_size=batch_size, color=color)


def save(source: str, prefix: str = "out") -> dict[str, Any]:
    return node("SaveImage", images=[source, 0], filename_prefix=prefix)


async def run(
    graph: Graph,
    *,
    files: Mapping[str, bytes] | None = None,
    hooks: RecordingHooks | None = None,
    interrupt: threading.Event | None = None,
) -> dict[str, NodeOutput]:
    store = dict(files or {})
    return await execute_graph(
        graph,
        load_image=lambda name: store[name],
        hooks=hooks or RecordingHooks(),
        interrupt=interrupt or threading.Event(),
    )


def decode(file: OutputFile) -> Image.Image:
    image = Image.open(io.BytesIO(file.data))
    image.load()
    return image


def png_bytes(image: Image.Image, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def problems_of(graph: Any) -> list[tuple[str | None, str | None, str]]:
    with pytest.raises(GraphInvalid) as caught:
        validate_graph(graph)
    return [(p.node_id, p.input_name, p.type) for p in caught.value.problems]


# --- end-to-end image graphs ---------------------------------------------------------------


async def test_empty_invert_save_gives_white_png_of_right_size() -> None:
    graph = {"1": empty(width=32, height=16), "2": node("ImageInvert", image=["1", 0])}
    graph["3"] = save("2", prefix="white")
    outputs = await run(graph)
    (file,) = outputs["3"].images
    assert file.filename == "white_00001_.png"
    assert file.mime_type == "image/png"
    image = decode(file)
    assert image.size == (32, 16)
    assert image.mode == "RGB"
    assert image.getextrema() == ((255, 255), (255, 255), (255, 255))
    assert json.loads(image.info["prompt"]) == graph


async def test_empty_image_color_is_rrggbb_and_invert_is_255_minus_value() -> None:
    graph = {"1": empty(color=0x102030), "2": save("1"), "3": node("ImageInvert", image=["1", 0])}
    graph["4"] = save("3")
    outputs = await run(graph)
    assert decode(outputs["2"].images[0]).getpixel((0, 0)) == (0x10, 0x20, 0x30)
    assert decode(outputs["4"].images[0]).getpixel((3, 2)) == (0xEF, 0xDF, 0xCF)


async def test_batches_are_saved_with_counters_per_prefix() -> None:
    graph = {
        "1": empty(batch_size=2),
        "2": save("1", "a"),
        "3": save("1", "a"),
        "4": save("1", "b"),
    }
    graph["5"] = node("PreviewImage", images=["1", 0])
    outputs = await run(graph)
    names = {key: [file.filename for file in out.images] for key, out in outputs.items()}
    assert names == {
        "2": ["a_00001_.png", "a_00002_.png"],
        "3": ["a_00003_.png", "a_00004_.png"],
        "4": ["b_00001_.png", "b_00002_.png"],
        "5": ["ComfyUI_temp_00001_.png", "ComfyUI_temp_00002_.png"],
    }


async def test_filename_prefix_keeps_only_a_safe_last_component() -> None:
    outputs = await run({"1": empty(), "2": save("1", "../sub/dir/na:me")})
    assert outputs["2"].images[0].filename == "na_me_00001_.png"


async def test_same_graph_gives_identical_png_bytes() -> None:
    graph = {
        "1": empty(width=20, height=10, color=0x336699),
        "2": node("ImageInvert", image=["1", 0]),
    }
    graph["3"] = node("ImageBlur", image=["2", 0], blur_radius=2, sigma=0.7)
    graph["4"] = save("3")
    first, second = await run(graph), await run(graph)
    assert first["4"].images[0].data == second["4"].images[0].data


async def test_load_image_with_alpha_gives_rgb_image_and_inverted_alpha_mask() -> None:
    source = Image.new("RGBA", (6, 4), (200, 100, 50, 255))
    source.putpixel((1, 1), (10, 20, 30, 0))
    source.putpixel((2, 1), (10, 20, 30, 55))
    graph = {"1": node("LoadImage", image="in.png"), "2": save("1")}
    graph["3"] = node("PreviewAny", source=["1", 1])
    outputs = await run(graph, files={"in.png": png_bytes(source)})
    image = decode(outputs["2"].images[0])
    assert image.size == (6, 4)
    assert image.getpixel((0, 0)) == (200, 100, 50)
    assert image.getpixel((1, 1)) == (10, 20, 30)
    assert outputs["3"].text == ("<1 x 6x4 L image batch>",)
    frames, masks = images.decode_image(png_bytes(source))
    assert masks[0].getpixel((0, 0)) == 0
    assert masks[0].getpixel((1, 1)) == 255
    assert masks[0].getpixel((2, 1)) == 200
    assert frames[0].mode == "RGB"


def test_load_image_without_alpha_gives_64x64_zero_mask() -> None:
    _, masks = images.decode_image(png_bytes(Image.new("RGB", (5, 5), (1, 2, 3))))
    assert masks[0].size == (64, 64)
    assert masks[0].getextrema() == (0, 0)


def test_load_image_palette_transparency_gives_mask() -> None:
    source = Image.new("P", (3, 3), 1)
    source.putpalette([0, 0, 0, 255, 0, 0])
    source.putpixel((0, 0), 0)
    _, masks = images.decode_image(png_bytes(source, transparency=0))
    assert masks[0].getpixel((0, 0)) == 255
    assert masks[0].getpixel((1, 1)) == 0


def test_load_image_applies_exif_orientation() -> None:
    source = Image.new("RGB", (6, 3), (0, 0, 0))
    source.putpixel((0, 0), (255, 255, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    frames, _ = images.decode_image(png_bytes(source, exif=exif))
    assert frames[0].size == (3, 6)
    assert frames[0].getpixel((2, 0)) == (255, 255, 255)


async def test_multi_frame_image_gives_batch_of_equal_size_frames() -> None:
    red, blue = Image.new("RGB", (4, 4), (255, 0, 0)), Image.new("RGB", (4, 4), (0, 0, 255))
    buffer = io.BytesIO()
    red.save(buffer, format="GIF", save_all=True, append_images=[blue])
    graph = {"1": node("LoadImage", image="anim.gif"), "2": save("1")}
    outputs = await run(graph, files={"anim.gif": buffer.getvalue()})
    colors = [decode(file).getpixel((1, 1)) for file in outputs["2"].images]
    assert colors == [(255, 0, 0), (0, 0, 255)]


@pytest.mark.parametrize("error", [FileNotFoundError("nope"), KeyError("missing.png")])
async def test_missing_input_file_fails_naming_node_and_file(error: Exception) -> None:
    def load(name: str) -> bytes:
        raise error

    graph = {"7": node("LoadImage", image="missing.png"), "8": save("7")}
    with pytest.raises(NodeFailed) as caught:
        await execute_graph(
            graph, load_image=load, hooks=RecordingHooks(), interrupt=threading.Event()
        )
    assert caught.value.node_id == "7"
    assert caught.value.class_type == "LoadImage"
    assert "missing.png" in caught.value.message
    assert "7" in str(caught.value)
    assert "LoadImage" in str(caught.value)


async def test_image_scale_with_zero_width_keeps_aspect() -> None:
    graph = {"1": empty(width=100, height=50)}
    graph["2"] = node(
        "ImageScale", image=["1", 0], upscale_method="bilinear", width=0, height=20, crop="disabled"
    )
    graph["3"] = save("2")
    outputs = await run(graph)
    assert decode(outputs["3"].images[0]).size == (40, 20)


async def test_image_scale_both_zero_leaves_size_unchanged() -> None:
    graph = {"1": empty(width=30, height=7)}
    graph["2"] = node(
        "ImageScale", image=["1", 0], upscale_method="area", width=0, height=0, crop="center"
    )
    graph["3"] = save("2")
    assert decode((await run(graph))["3"].images[0]).size == (30, 7)


async def test_image_scale_center_crop_cuts_the_sides() -> None:
    source = Image.new("RGB", (100, 50), (0, 255, 0))
    source.paste((255, 0, 0), (0, 0, 25, 50))
    source.paste((0, 0, 255), (75, 0, 100, 50))
    graph = {"1": node("LoadImage", image="in.png")}
    graph["2"] = node(
        "ImageScale",
        image=["1", 0],
        upscale_method="nearest-exact",
        width=10,
        height=10,
        crop="center",
    )
    graph["3"] = save("2")
    result = decode((await run(graph, files={"in.png": png_bytes(source)}))["3"].images[0])
    assert result.size == (10, 10)
    assert result.getextrema() == ((0, 0), (255, 255), (0, 0))


def test_image_scale_center_crop_cuts_top_and_bottom_of_tall_images() -> None:
    source = Image.new("RGB", (20, 60), (0, 255, 0))
    source.paste((255, 0, 0), (0, 0, 20, 20))
    source.paste((0, 0, 255), (0, 40, 20, 60))
    (result,) = images.scale((source,), "bilinear", 5, 5, "center")
    assert result.size == (5, 5)
    assert result.getextrema() == ((0, 0), (255, 255), (0, 0))
    (uncropped,) = images.scale((source,), "nearest-exact", 5, 5, "disabled")
    assert uncropped.getpixel((2, 0)) == (255, 0, 0)


async def test_image_scale_by_rounds_size() -> None:
    graph = {"1": empty(width=10, height=5), "3": save("2")}
    graph["2"] = node("ImageScaleBy", image=["1", 0], upscale_method="lanczos", scale_by=1.5)
    assert decode((await run(graph))["3"].images[0]).size == (15, 8)


async def test_image_crop_clamps_origin_and_clips_box() -> None:
    source = Image.new("RGB", (10, 6), (0, 0, 0))
    source.paste((9, 99, 199), (9, 0, 10, 6))
    graph = {"1": node("LoadImage", image="in.png"), "3": save("2")}
    graph["2"] = node("ImageCrop", image=["1", 0], width=5, height=4, x=50, y=3)
    result = decode((await run(graph, files={"in.png": png_bytes(source)}))["3"].images[0])
    assert result.size == (1, 3)
    assert result.getextrema() == ((9, 9), (99, 99), (199, 199))


async def test_image_crop_inside_image() -> None:
    graph = {"1": empty(width=10, height=10), "3": save("2")}
    graph["2"] = node("ImageCrop", image=["1", 0], width=4, height=3, x=2, y=1)
    assert decode((await run(graph))["3"].images[0]).size == (4, 3)


def _reference_blur(image: Image.Image, radius: int, sigma: float) -> list[float]:
    weights = images.gaussian_weights(radius, sigma)
    width, height = image.size

    def reflect(i: int, n: int) -> int:
        return -i if i < 0 else (2 * (n - 1) - i if i >= n else i)

    result = []
    for y in range(height):
        for x in range(width):
            total = 0.0
            for dy, wy in enumerate(weights, start=-radius):
                for dx, wx in enumerate(weights, start=-radius):
                    pixel = image.getpixel((reflect(x + dx, width), reflect(y + dy, height)))
                    assert isinstance(pixel, float | int)
                    total += wx * wy * pixel
            result.append(total)
    return result


@pytest.mark.parametrize(("radius", "sigma"), [(1, 1.0), (2, 0.5), (3, 10.0)])
def test_blur_matches_comfyui_kernel_with_reflected_borders(radius: int, sigma: float) -> None:
    gray = Image.new("L", (7, 5), 10)
    gray.putpixel((3, 2), 250)
    gray.putpixel((0, 0), 120)
    (blurred,) = images.blur((Image.merge("RGB", [gray, gray, gray]),), radius, sigma)
    expected = _reference_blur(gray, radius, sigma)
    actual = list(blurred.getchannel("G").tobytes())
    assert all(abs(a - e) <= 0.51 for a, e in zip(actual, expected, strict=True))
    assert actual != list(gray.tobytes())


def test_gaussian_weights_are_normalised_and_relative_to_radius() -> None:
    weights = images.gaussian_weights(2, 0.5)
    assert len(weights) == 5
    assert sum(weights) == pytest.approx(1.0)
    assert weights[1] / weights[2] == pytest.approx(math.exp(-0.5))
    assert weights[0] / weights[2] == pytest.approx(math.exp(-2.0))


# --- text nodes ----------------------------------------------------------------------------


async def test_string_concatenate_to_preview_any() -> None:
    graph = {
        "1": node("PrimitiveString", value="left"),
        "2": node("StringConcatenate", string_a=["1", 0], string_b="right", delimiter=" + "),
        "3": node("PreviewAny", source=["2", 0]),
    }
    assert await run(graph) == {"3": NodeOutput(text=("left + right",))}


@pytest.mark.parametrize(
    ("class_type", "value", "text"),
    [
        ("PrimitiveInt", "42", "42"),
        ("PrimitiveFloat", 1, "1.0"),
        ("PrimitiveBoolean", 0, "False"),
        ("PrimitiveStringMultiline", 7, "7"),
    ],
)
async def test_primitives_coerce_literals(class_type: str, value: Any, text: str) -> None:
    graph = {"1": node(class_type, value=value), "2": node("PreviewAny", source=["1", 0])}
    assert (await run(graph))["2"].text == (text,)


async def test_preview_any_shows_json_for_structured_literals() -> None:
    graph = {
        "1": node("TestSleep", value={"a": 1}, seconds=0),
        "2": node("PreviewAny", source=["1", 0]),
    }
    assert (await run(graph))["2"].text == ('{"a": 1}',)


# --- hooks, interruption, failures ---------------------------------------------------------


async def test_hooks_are_called_in_order_with_index_and_total() -> None:
    hooks = RecordingHooks()
    graph = {"10": save("9"), "9": node("ImageInvert", image=["2", 0]), "2": empty()}
    await run(graph, hooks=hooks)
    assert hooks.events == [
        ("started", "2", "EmptyImage", 0, 3),
        ("finished", "2", "EmptyImage", 0, 3),
        ("started", "9", "ImageInvert", 1, 3),
        ("finished", "9", "ImageInvert", 1, 3),
        ("started", "10", "SaveImage", 2, 3),
        ("finished", "10", "SaveImage", 2, 3),
    ]


async def test_hook_exception_propagates_unchanged() -> None:
    with pytest.raises(LookupError, match="abort at 1"):
        await run({"1": empty(), "2": save("1")}, hooks=FailingHooks())


async def test_interrupt_set_before_start_raises_without_running_nodes() -> None:
    hooks, interrupt = RecordingHooks(), threading.Event()
    interrupt.set()
    with pytest.raises(Interrupted):
        await run({"1": empty(), "2": save("1")}, hooks=hooks, interrupt=interrupt)
    assert hooks.events == []


class InterruptAfter(RecordingHooks):
    def __init__(self, node_id: str, interrupt: threading.Event) -> None:
        super().__init__()
        self.node_id, self.interrupt = node_id, interrupt

    async def node_finished(self, node_id: str, class_type: str, index: int, total: int) -> None:
        await super().node_finished(node_id, class_type, index, total)
        if node_id == self.node_id:
            self.interrupt.set()


async def test_interrupt_stops_at_the_next_node_boundary() -> None:
    interrupt = threading.Event()
    hooks = InterruptAfter("1", interrupt)
    with pytest.raises(Interrupted):
        await run({"1": empty(), "2": save("1")}, hooks=hooks, interrupt=interrupt)
    assert [event[:2] for event in hooks.events] == [("started", "1"), ("finished", "1")]


class WatchedFlag(threading.Event):
    """An interrupt flag that tells the test once a sleeping node waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited_on = threading.Event()
        self.sleepers: set[threading.Thread] = set()

    def wait(self, timeout: float | None = None) -> bool:
        self.sleepers.add(threading.current_thread())
        self.waited_on.set()
        return super().wait(timeout)


LONG_SLEEP = 2 * DEADLINE
"""Longer than any wait of the test: only an interrupt can end such a sleep in time."""


async def test_test_sleep_interrupted_mid_sleep_returns_quickly() -> None:
    interrupt, hooks = WatchedFlag(), RecordingHooks()
    graph = {
        "1": node("TestSleep", value="x", seconds=LONG_SLEEP),
        "2": node("PreviewAny", source=["1", 0]),
    }
    task = asyncio.create_task(run(graph, hooks=hooks, interrupt=interrupt))
    await until_true(interrupt.waited_on.is_set, what="TestSleep to sleep")
    interrupt.set()
    with pytest.raises(Interrupted):
        await asyncio.wait_for(task, DEADLINE)
    assert [event[:2] for event in hooks.events] == [("started", "1")]  # stopped mid-node


async def test_event_loop_is_not_blocked_while_a_node_sleeps() -> None:
    graph = {
        "1": node("TestSleep", value=5, seconds=0.3),
        "2": node("PreviewAny", source=["1", 0]),
    }
    interrupt = WatchedFlag()
    outputs = await run(graph, interrupt=interrupt)
    assert outputs["2"].text == ("5",)
    assert interrupt.sleepers  # the node slept, on another thread than the event loop's
    assert threading.current_thread() not in interrupt.sleepers


def test_node_context_sleep_stops_when_aborted() -> None:
    interrupt = WatchedFlag()
    ctx = NodeContext("{}", lambda name: b"", interrupt)
    raised: list[BaseException] = []

    def sleep() -> None:
        try:
            ctx.sleep(LONG_SLEEP)
        except Interrupted as exc:
            raised.append(exc)

    sleeper = threading.Thread(target=sleep, daemon=True)
    sleeper.start()
    until_sync(interrupt.waited_on.is_set, what="ctx.sleep to sleep")
    ctx.abort.set()  # the interrupt flag itself stays clear
    until_sync(lambda: not sleeper.is_alive(), what="ctx.sleep to notice the abort")
    assert [type(exc) for exc in raised] == [Interrupted]


async def test_node_raising_becomes_node_failed_naming_the_node() -> None:
    graph = {"1": empty(width=10, height=10), "3": save("2")}
    graph["2"] = node("ImageScaleBy", image=["1", 0], upscale_method="bilinear", scale_by=0.01)
    with pytest.raises(NodeFailed) as caught:
        await run(graph)
    assert (caught.value.node_id, caught.value.class_type) == ("2", "ImageScaleBy")
    assert caught.value.message.startswith("ValueError: ")
    assert str(caught.value).startswith("Node 2 (ImageScaleBy) failed: ValueError")


async def test_wrong_value_through_any_link_fails_at_run_time() -> None:
    graph = {
        "1": node("TestSleep", value="wide", seconds=0),
        "2": node("EmptyImage", width=["1", 0], height=4, batch_size=1, color=0),
        "3": save("2"),
    }
    with pytest.raises(NodeFailed, match="expects INT") as caught:
        await run(graph)
    assert caught.value.node_id == "2"


async def test_out_of_range_value_through_link_fails_at_run_time() -> None:
    graph = {
        "1": node("PrimitiveInt", value=0),
        "2": node("EmptyImage", width=["1", 0], height=4, batch_size=1, color=0),
        "3": save("2"),
    }
    with pytest.raises(NodeFailed, match="smaller than min"):
        await run(graph)


async def test_linked_int_drives_image_size() -> None:
    graph = {
        "1": node("PrimitiveInt", value="12"),
        "2": node("EmptyImage", width=["1", 0], height=["1", 0], batch_size=1, color=0),
        "3": save("2"),
    }
    assert decode((await run(graph))["3"].images[0]).size == (12, 12)


async def test_too_large_batch_fails_instead_of_allocating() -> None:
    graph = {"1": empty(width=16384, height=16384, batch_size=4096), "2": save("1")}
    with pytest.raises(NodeFailed, match="exceeds the limit"):
        await run(graph)


# --- validation ----------------------------------------------------------------------------


def test_validate_graph_orders_topologically_with_numeric_ties() -> None:
    graph = {
        "10": empty(),
        "9": empty(),
        "b": save("10"),
        "a": save("9"),
        "2": node("ImageInvert", image=["10", 0]),
        "100": save("2"),
    }
    assert validate_graph(graph) == ["9", "10", "2", "100", "a", "b"]


async def test_unreachable_nodes_are_neither_validated_nor_executed() -> None:
    hooks = RecordingHooks()
    graph = {
        "1": empty(),
        "2": save("1"),
        "3": node("ImageInvert", image=["99", 0]),
        "4": node("EmptyImage", width="abc"),
    }
    assert validate_graph(graph) == ["1", "2"]
    await run(graph, hooks=hooks)
    assert {event[1] for event in hooks.events} == {"1", "2"}


def _valid_scale(**overrides: Any) -> Graph:
    inputs = {
        "image": ["1", 0],
        "upscale_method": "bicubic",
        "width": 10,
        "height": 10,
        "crop": "disabled",
    }
    return {"1": empty(), "2": node("ImageScale", **{**inputs, **overrides}), "3": save("2")}


@pytest.mark.parametrize(
    ("overrides", "input_name", "problem_type"),
    [
        ({"width": "abc"}, "width", "invalid_input_type"),
        ({"width": None}, "width", "invalid_input_type"),
        ({"width": -1}, "width", "value_smaller_than_min"),
        ({"height": 16385}, "height", "value_bigger_than_max"),
        ({"upscale_method": "magic"}, "upscale_method", "value_not_in_list"),
        ({"image": ["1", 0, 0]}, "image", "bad_linked_input"),
        ({"image": [1, 0]}, "image", "bad_linked_input"),
        ({"image": ["1", "0"]}, "image", "bad_linked_input"),
        ({"image": ["42", 0]}, "image", "bad_linked_input"),
        ({"image": ["1", 1]}, "image", "bad_linked_input"),
        ({"image": "picture"}, "image", "invalid_input_type"),
        ({"crop": {"__value__": ["center"]}}, "crop", "invalid_input_type"),
    ],
)
def test_input_problems_name_node_and_input(
    overrides: dict[str, Any], input_name: str, problem_type: str
) -> None:
    assert problems_of(_valid_scale(**overrides)) == [("2", input_name, problem_type)]


def test_string_width_is_coerced_like_comfyui() -> None:
    assert validate_graph(_valid_scale(width="512", height=3.9)) == ["1", "2", "3"]


def test_required_input_missing() -> None:
    graph = _valid_scale()
    del graph["2"]["inputs"]["crop"]
    with pytest.raises(GraphInvalid) as caught:
        validate_graph(graph)
    (problem,) = caught.value.problems
    assert (problem.node_id, problem.class_type, problem.input_name) == ("2", "ImageScale", "crop")
    assert (problem.type, problem.message) == (
        "required_input_missing",
        "Required input is missing",
    )
    assert "node 2 (ImageScale)" in str(caught.value)


def test_return_type_mismatch() -> None:
    graph = {"1": node("PrimitiveString", value="x"), "2": save("1")}
    with pytest.raises(GraphInvalid) as caught:
        validate_graph(graph)
    (problem,) = caught.value.problems
    assert (problem.node_id, problem.input_name, problem.type) == (
        "2",
        "images",
        "return_type_mismatch",
    )
    assert problem.details == "images, received_type(STRING) mismatch input_type(IMAGE)"


def test_min_max_messages_follow_comfyui() -> None:
    with pytest.raises(GraphInvalid) as caught:
        validate_graph({"1": empty(width=0), "2": save("1")})
    assert caught.value.problems[0].message == "Value 0 smaller than min of 1"


def test_all_problems_of_reachable_nodes_are_reported() -> None:
    graph = {
        "1": node("EmptyImage", width=0, height=99999, batch_size=1, color="red"),
        "2": node("ImageBlur", image=["1", 0], blur_radius=0, sigma=1.0),
        "3": save("2"),
    }
    assert problems_of(graph) == [
        ("1", "width", "value_smaller_than_min"),
        ("1", "height", "value_bigger_than_max"),
        ("1", "color", "invalid_input_type"),
        ("2", "blur_radius", "value_smaller_than_min"),
    ]


def test_unknown_class_is_reported() -> None:
    graph = {"1": empty(), "2": save("1"), "3": node("KSampler")}
    with pytest.raises(GraphInvalid) as caught:
        validate_graph(graph)
    (problem,) = caught.value.problems
    assert (problem.node_id, problem.type) == ("3", "invalid_prompt")
    assert problem.message == "Cannot execute because node KSampler does not exist."


@pytest.mark.parametrize("broken", [{"inputs": {}}, "not a node"])
def test_missing_class_type_is_reported(broken: Any) -> None:
    with pytest.raises(GraphInvalid) as caught:
        validate_graph({"1": empty(), "2": save("1"), "5": broken})
    (problem,) = caught.value.problems
    assert problem.node_id == "5"
    assert problem.message == "Cannot execute because a node is missing the class_type property."


def test_graph_without_output_node_is_rejected() -> None:
    assert problems_of({"1": empty()}) == [(None, None, "prompt_no_outputs")]


def test_non_object_graph_is_rejected() -> None:
    assert problems_of(["1"]) == [(None, None, "invalid_prompt")]


def test_dependency_cycle_is_rejected() -> None:
    graph = {
        "1": node("TestSleep", value=["2", 0], seconds=0),
        "2": node("TestSleep", value=["1", 0], seconds=0),
        "3": node("PreviewAny", source=["2", 0]),
    }
    assert problems_of(graph) == [
        ("1", None, "dependency_cycle"),
        ("2", None, "dependency_cycle"),
        ("3", None, "dependency_cycle"),
    ]


async def test_invalid_graph_runs_no_node() -> None:
    hooks = RecordingHooks()
    with pytest.raises(GraphInvalid):
        await run({"1": empty(), "2": save("1"), "3": empty(width=-5), "4": save("3")}, hooks=hooks)
    assert hooks.events == []


# --- object_info ---------------------------------------------------------------------------


def test_object_info_matches_comfyui_shapes() -> None:
    info = object_info(["b.png", "a.png"])
    assert set(info) == set(NODE_SPECS)
    assert info["EmptyImage"]["input"]["required"] == {
        "width": ["INT", {"default": 512, "min": 1, "max": 16384}],
        "height": ["INT", {"default": 512, "min": 1, "max": 16384}],
        "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
        "color": ["INT", {"default": 0, "min": 0, "max": 16777215}],
    }
    assert info["LoadImage"]["input"]["required"] == {
        "image": [["a.png", "b.png"], {"image_upload": True}]
    }
    assert info["LoadImage"]["output"] == ["IMAGE", "MASK"]
    assert info["ImageScale"]["input"]["required"]["crop"] == [["disabled", "center"]]
    assert list(info["ImageScale"]["input"]["required"]) == [
        "image",
        "upscale_method",
        "width",
        "height",
        "crop",
    ]
    assert info["ImageInvert"]["input"]["required"] == {"image": ["IMAGE"]}
    assert info["SaveImage"]["output_node"] is True
    assert info["SaveImage"]["output"] == []
    assert info["PrimitiveBoolean"]["input"]["required"] == {"value": ["BOOLEAN", {}]}
    assert info["TestSleep"]["input"]["required"]["seconds"][1]["step"] == 0.01
    assert info["PreviewAny"]["output_node"] is True
    for name, entry in info.items():
        assert entry["name"] == name
        assert {"display_name", "category", "output_name", "input"} <= set(entry)
