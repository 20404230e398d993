"""The stand-in reproduces the recorded ComfyUI 0.3.64 protocol (compared with the captures)."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin

from tests.comfyui.captures import load, types
from tests.comfyui.helpers import png, sleepy
from tests.comfyui.standin import ComfyStandin
from tests.comfyui.wsprobe import Listener


@pytest.fixture
async def http(standin: ComfyStandin) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=standin.base_url, timeout=10) as client:
        yield client


def trivial_graph() -> dict[str, Any]:
    trivial = load("core")["trivial"]
    graph: dict[str, Any] = trivial["history"][trivial["prompt_id"]]["prompt"][2]
    return graph


def without_progress(kinds: list[str]) -> list[str]:
    return [kind for kind in kinds if kind not in ("progress_state", "progress")]


async def test_trivial_run_matches_the_capture(
    standin: ComfyStandin, http: httpx.AsyncClient
) -> None:
    capture = load("core")["trivial"]
    async with Listener(standin.base_url, "lab-client-A") as ws, Listener(standin.base_url) as obs:
        assert ws.frames[0] == load("core")["ws_initial_A"][0][2]
        reply = await http.post(
            "/prompt", json={"prompt": trivial_graph(), "client_id": "lab-client-A"}
        )
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/json; charset=utf-8"
        prompt_id = reply.json()["prompt_id"]
        assert reply.json() == {"prompt_id": prompt_id, "number": 0, "node_errors": {}}
        await ws.until_done(prompt_id)
        await obs.until(lambda frames: len(frames) >= 4)
    assert without_progress(ws.types()[1:]) == without_progress(types(capture["ws_A"]))
    assert obs.types() == ["status"] * 4
    history = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
    expected = capture["history"][capture["prompt_id"]]
    assert history.keys() == expected.keys()
    assert history["outputs"] == expected["outputs"]
    assert history["meta"] == expected["meta"]
    assert history["prompt"][3:] == expected["prompt"][3:]
    assert [m[0] for m in history["status"]["messages"]] == [
        m[0] for m in expected["status"]["messages"]
    ]
    view = await http.get("/view", params={"filename": "lab_trivial_00001_.png", "type": "output"})
    recorded = load("core")["trivial_view"]
    assert view.headers["content-disposition"] == recorded["content_disposition"]
    image = Image.open(io.BytesIO(view.content))
    assert isinstance(image, PngImagePlugin.PngImageFile)
    assert [*image.size] == recorded["size"]
    assert image.mode == recorded["mode"]
    pixel = image.getpixel((0, 0))
    assert isinstance(pixel, tuple)
    assert [*pixel] == recorded["pixel00"]
    assert sorted(image.text) == recorded["png_text_keys"]


async def test_identical_resubmission_is_served_from_cache(
    standin: ComfyStandin, http: httpx.AsyncClient
) -> None:
    capture = load("core")["trivial_resubmit_cached"]
    async with Listener(standin.base_url, "lab-client-A") as ws:
        start = 0
        for _ in range(2):
            start = len(ws.frames)
            body = {"prompt": trivial_graph(), "client_id": "lab-client-A"}
            prompt_id = (await http.post("/prompt", json=body)).json()["prompt_id"]
            await ws.until_done(prompt_id)
    assert ws.types()[start:] == types(capture["ws_A"])
    cached = [f for f in ws.frames if f["type"] == "execution_cached"]
    assert cached[-1]["data"]["nodes"] == ["1", "2", "3"]
    history = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
    assert history["outputs"] == capture["history"][capture["prompt_id"]]["outputs"]


VALIDATION_CASES = [
    "validation_invalid_input_type",
    "validation_missing_node_class",
    "validation_missing_class_type",
    "validation_value_not_in_list",
    "validation_return_type_mismatch",
    "validation_required_input_missing",
    "validation_value_bigger_than_max",
    "validation_value_smaller_than_min",
    "validation_no_outputs",
    "validation_loadimage_missing_file",
    "validation_bad_link_length",
]


def strip_input_config(reply: dict[str, Any]) -> dict[str, Any]:
    """``input_config`` holds ComfyUI's tooltips and steps, which the local node set lacks."""
    for entry in reply.get("node_errors", {}).values():
        for error in entry["errors"]:
            error["extra_info"].pop("input_config", None)
    return reply


@pytest.mark.parametrize("name", VALIDATION_CASES)
async def test_validation_replies_match_the_capture(
    standin: ComfyStandin, http: httpx.AsyncClient, name: str
) -> None:
    await http.post("/upload/image", files={"image": ("lab_in.png", png(32, 24))})
    capture = load("core")[name]
    reply = await http.post("/prompt", json={"prompt": capture["request_prompt"]})
    assert reply.status_code == capture["response"]["status"] == 400
    assert strip_input_config(reply.json()) == strip_input_config(capture["response"]["json"])


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (b"{not json", "validation_not_json"),
        (b'{"prompt": "a string"}', "validation_prompt_is_string"),
        (b'{"client_id": "x"}', "validation_no_prompt_key"),
    ],
)
async def test_malformed_prompt_bodies(http: httpx.AsyncClient, body: bytes, name: str) -> None:
    recorded = load("core")[name]
    reply = await http.post("/prompt", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == recorded["status"]
    assert reply.headers["content-type"] == recorded["content_type"]
    if recorded["json"] is None:
        assert reply.text == recorded["text"]
    else:
        assert reply.json() == recorded["json"]


async def test_partly_valid_prompt_is_accepted_with_node_errors(
    standin: ComfyStandin, http: httpx.AsyncClient
) -> None:
    capture = load("core")["validation_partial_one_output_bad"]
    reply = await http.post("/prompt", json={"prompt": capture["request_prompt"]})
    assert reply.status_code == 200
    prompt_id, node_errors = reply.json()["prompt_id"], reply.json()["node_errors"]
    assert list(node_errors) == ["5"]
    assert node_errors["5"]["dependent_outputs"] == ["4"]
    await standin.wait_for(lambda state: prompt_id in state.history)
    entry = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
    assert entry["prompt"][4] == ["3"]
    assert list(entry["outputs"]) == ["3"]


async def test_upload_naming_rules(http: httpx.AsyncClient) -> None:
    recorded = load("core")

    async def upload(data: bytes, **form: str) -> httpx.Response:
        return await http.post("/upload/image", files={"image": ("lab_in.png", data)}, data=form)

    first, other = png(color=(1, 2, 3)), png(color=(4, 5, 6))
    cases = [
        (first, {"overwrite": "true"}, "upload_overwrite_true"),
        (first, {}, "upload_same_bytes_no_overwrite"),
        (other, {}, "upload_diff_bytes_no_overwrite"),
        (first, {"subfolder": "labsub"}, "upload_subfolder"),
    ]
    for data, form, name in cases:
        assert (await upload(data, **form)).json() == recorded[name]["json"]
    missing = await http.post("/upload/image", data={"overwrite": "true"})
    assert (missing.status_code, missing.content) == (400, b"")


async def test_empty_replies_routes_and_origin(http: httpx.AsyncClient) -> None:
    for path, body in [("/interrupt", {}), ("/queue", {"delete": ["nope"]}), ("/free", {})]:
        reply = await http.post(path, json=body)
        assert (reply.status_code, reply.content) == (200, b"")
        assert "content-type" not in reply.headers
    assert (await http.get("/api/queue")).json() == load("core")["GET /api/queue"]["json"]
    assert (await http.get("/history/does-not-exist")).json() == {}
    assert (await http.get("/system_stats")).json() == load("core")["GET /system_stats"]["json"]
    assert (await http.get("/features")).json() == load("core")["GET /features"]["json"]
    assert (await http.get("/object_info/NoSuchNode")).json() == {}
    refused = await http.get("/queue", headers={"origin": "http://evil.example"})
    assert (refused.status_code, refused.content) == (403, b"")
    host = http.base_url.netloc.decode()
    assert (await http.get("/queue", headers={"origin": f"http://{host}"})).status_code == 200
    views = [("nope.png", None, 404), ("../x.png", None, 400), ("x.png", "../..", 403)]
    for filename, subfolder, status in views:
        params = {"filename": filename} | ({"subfolder": subfolder} if subfolder else {})
        assert (await http.get("/view", params=params)).status_code == status


async def test_queue_delete_and_interrupt_semantics(
    standin: ComfyStandin, http: httpx.AsyncClient
) -> None:
    await standin.hold(running=True, node="2")  # each prompt runs until interrupted
    async with Listener(standin.base_url, "lab-client-Q") as ws:
        ids = []
        for index in range(3):
            body = {"prompt": sleepy(3.0, f"q{index}"), "client_id": "lab-client-Q"}
            ids.append((await http.post("/prompt", json=body)).json()["prompt_id"])
        await standin.wait_held(ids[0])
        queue = (await http.get("/queue")).json()
        assert [item[1] for item in queue["queue_running"]] == ids[:1]
        assert all(len(item) == 5 for item in queue["queue_pending"])
        await http.post("/queue", json={"delete": [ids[2]]})
        await http.post("/queue", json={"delete": [ids[0]]})
        await http.post("/interrupt", json={"prompt_id": ids[1]})
        queue = (await http.get("/queue")).json()
        assert [item[1] for item in queue["queue_running"]] == ids[:1]
        assert [item[1] for item in queue["queue_pending"]] == ids[1:2]
        await http.post("/interrupt", json={"prompt_id": ids[0]})
        await ws.until_done(ids[0])
        await standin.wait_held(ids[1])
        await http.post("/interrupt")
        await ws.until_done(ids[1])
    for prompt_id in ids[:2]:
        status = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]["status"]
        assert (status["status_str"], status["completed"]) == ("error", False)
        assert status["messages"][-1][0] == "execution_interrupted"
    assert (await http.get(f"/history/{ids[2]}")).json() == {}
    interrupted = [f["data"] for f in ws.frames if f["type"] == "execution_interrupted"]
    assert [(d["node_id"], d["node_type"], d["executed"]) for d in interrupted] == [
        ("2", "TestSleep", ["1"])
    ] * 2


async def test_prompt_without_client_id_only_leaks_progress(
    standin: ComfyStandin, http: httpx.AsyncClient
) -> None:
    capture = load("core")["no_client_id"]
    async with Listener(standin.base_url, "lab-client-A") as ws:
        prompt_id = (await http.post("/prompt", json={"prompt": trivial_graph()})).json()[
            "prompt_id"
        ]
        await ws.until(lambda frames: frames[-1]["type"] == "status" and len(frames) > 3)
        seen = len(ws.frames)
        # a marker after anything the prompt could still send: the next queue change (a
        # prompt kept pending) is broadcast to every socket
        await standin.hold(pending=True)
        marker = {"prompt": trivial_graph(), "client_id": "lab-client-B"}
        assert (await http.post("/prompt", json=marker)).status_code == 200
        await ws.until(lambda frames: len(frames) > seen)
    assert ws.frames[seen] == {
        "type": "status",
        "data": {"status": {"exec_info": {"queue_remaining": 1}}},
    }
    assert ws.types()[1:seen] == types(capture["ws_A"])
    assert prompt_id in (await http.get("/history")).json()


async def test_reconnect_hazard_is_reproduced(
    standin: ComfyStandin, http: httpx.AsyncClient
) -> None:
    recorded = load("dupe")
    async with (
        Listener(standin.base_url, "lab-client-D") as old,
        Listener(standin.base_url, "lab-client-D") as new,
    ):
        body = {"prompt": trivial_graph(), "client_id": "lab-client-D"}
        first = (await http.post("/prompt", json=body)).json()["prompt_id"]
        await new.until_done(first)
        assert old.types()[1:] == recorded["both_open_old_saw"]
        saw = new.types()[1:]  # the capture's run had node 1 cached: compare both ends
        assert saw[:4] == recorded["both_open_new_saw"][:4]
        assert saw[-3:] == recorded["both_open_new_saw"][-3:]
        await old.close()
        # the stand-in saw it close, and unregistered clientId D with it (the hazard)
        await standin.wait_for(lambda state: len(state.peers) == 1)
        seen = len(new.frames)
        body = {"prompt": trivial_graph() | {"3": sleepy(0, "x")["3"]}, "client_id": "lab-client-D"}
        second = (await http.post("/prompt", json=body)).json()["prompt_id"]
        await standin.wait_for(lambda state: second in state.history)
    # leaving the block closed ``new``: the stand-in's close frame came after anything it sent
    assert new.types()[seen:] == recorded["after_old_closed_new_saw"]


async def test_crash_restart_forgets_everything(
    standin: ComfyStandin, http: httpx.AsyncClient
) -> None:
    body = {"prompt": trivial_graph(), "prompt_id": str(uuid.uuid4())}
    assert (await http.post("/prompt", json=body)).json()["number"] == 0
    await standin.wait_for(lambda state: body["prompt_id"] in state.history)
    await standin.crash_restart(downtime=0)
    assert (await http.get("/history")).json() == {}
    assert (await http.post("/prompt", json=body)).json()["number"] == 0
