"""ComfyClient against the stand-in, and the pure graph helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.comfyui.captures import load
from tests.comfyui.helpers import node, png, sleepy, trivial
from tests.comfyui.standin import ComfyStandin
from wfrun.engines.comfyui import (
    ComfyClient,
    ComfyProtocolError,
    ComfyServerError,
    ComfyUnavailable,
    PromptRejected,
)
from wfrun.engines.comfyui.channel import ws_url
from wfrun.engines.comfyui.graph import nodes_to_run, rewrite_names, upload_name


@pytest.fixture
async def client(standin: ComfyStandin) -> AsyncIterator[ComfyClient]:
    comfy = ComfyClient(standin.base_url + "/")
    try:
        yield comfy
    finally:
        await comfy.aclose()


async def test_upload_returns_the_load_image_value(client: ComfyClient) -> None:
    assert await client.upload_image("a.png", png()) == "a.png"
    assert await client.upload_image("a.png", png(), subfolder="sub") == "sub/a.png"
    renamed = await client.upload_image("a.png", png(color=(9, 9, 9)), overwrite=False)
    assert renamed == "a (1).png"


async def test_queue_history_and_view(standin: ComfyStandin, client: ComfyClient) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    await standin.hold(running=True, node="2")  # the first stays running until interrupted
    for index, prompt_id in enumerate(ids):
        graph = sleepy(0.3, f"c{index}")
        await client.queue_prompt(graph, prompt_id=prompt_id, client_id="nobody")
    await standin.wait_held(ids[0])
    state = await client.queue()
    assert state.running == (ids[0],)
    assert state.pending == tuple(ids[1:])
    assert state.knows(ids[2])
    assert not state.knows("other")
    assert await client.history(ids[2]) is None
    await client.delete_pending(ids[2])
    await client.interrupt(ids[0])
    await standin.release()
    await standin.wait_for(lambda s: ids[1] in s.history)
    entry = await client.history(ids[1])
    assert entry is not None
    assert entry["status"]["status_str"] == "success"
    ref = entry["outputs"]["3"]["images"][0]
    assert (await client.view(ref["filename"], ref["subfolder"], ref["type"]))[:4] == b"\x89PNG"
    with pytest.raises(ComfyProtocolError) as missing:
        await client.view("missing.png")
    assert missing.value.status == 404
    await client.delete_history(ids[1])
    assert await client.history(ids[1]) is None
    assert (await client.system_stats())["system"]["comfyui_version"] == "0.3.64"
    assert (await client.object_info())["TestSleep"]["output_node"] is False


async def test_400_carries_error_and_node_errors(client: ComfyClient) -> None:
    graph = trivial()
    graph["1"]["inputs"]["width"] = "abc"
    with pytest.raises(PromptRejected) as caught:
        await client.queue_prompt(graph, prompt_id=str(uuid.uuid4()), client_id="c")
    expected = load("core")["validation_invalid_input_type"]["response"]["json"]
    assert caught.value.error == expected["error"]
    assert caught.value.node_errors.keys() == expected["node_errors"].keys()
    assert not caught.value.accepted
    assert (caught.value.code.name, caught.value.node_id) == ("ENGINE_VALIDATION_FAILED", "1")


async def test_200_with_node_errors_is_a_rejection_of_an_accepted_prompt(
    client: ComfyClient,
) -> None:
    graph = trivial() | {
        "4": node("SaveImage", images=["5", 0], filename_prefix="x"),
        "5": node("ImageInvert", image=["1", 1]),
    }
    prompt_id = str(uuid.uuid4())
    with pytest.raises(PromptRejected) as caught:
        await client.queue_prompt(graph, prompt_id=prompt_id, client_id="c")
    assert caught.value.accepted
    assert caught.value.prompt_id == prompt_id
    assert list(caught.value.node_errors) == ["5"]


async def test_server_errors_and_unreachable_servers_are_transient(
    standin: ComfyStandin, client: ComfyClient
) -> None:
    with pytest.raises(ComfyServerError):
        await client.queue_prompt("not a graph", prompt_id="x", client_id="c")  # type: ignore[arg-type]
    await standin.stop()
    with pytest.raises(ComfyUnavailable) as caught:
        await client.queue()
    assert "is unreachable (GET /queue)" in caught.value.message


def test_graph_helpers() -> None:
    info = {"SaveImage": {"output_node": True}, "EmptyImage": {"output_node": False}}
    graph = trivial() | {"9": node("EmptyImage")}
    assert nodes_to_run(graph, None) == ("1", "2", "3", "9")
    assert nodes_to_run(graph, info | {"ImageInvert": {}}) == ("1", "2", "3")
    diamond = {
        "4": node("SaveImage", images=["3", 0]),
        "3": node("ImageBlend", a=["2", 0], b=["1", 0]),
        "2": node("ImageInvert", image=["1", 0]),
        "1": node("EmptyImage"),
    }
    assert nodes_to_run(diamond, info) == ("1", "2", "3", "4")
    renamed = rewrite_names({"1": node("LoadImage", image="a.png")}, {"a.png": "wfrun/x-a.png"})
    assert renamed["1"]["inputs"]["image"] == "wfrun/x-a.png"
    assert upload_name("dir/a.png", b"x") == upload_name("a.png", b"x")
    assert upload_name("a.png", b"x") != upload_name("a.png", b"y")
    assert ws_url("https://h:1/prefix/", "a b") == "wss://h:1/prefix/ws?clientId=a%20b"
