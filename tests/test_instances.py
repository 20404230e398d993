"""Engine instances through the operator CLI, and health probes against loopback servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from click.testing import Result

from tests.test_cli import as_json
from wfrun.db.instances import LoadedInstance
from wfrun.runtime import Runtime
from wfrun.services import instances
from wfrun.workers import health


def test_add_list_drain_remove(invoke):
    added = as_json(
        invoke(
            "instances",
            "add",
            "http://127.0.0.1:8188/",
            "--capacity",
            "2",
            "--label",
            "gpu=a100",
            "--label",
            "region=sh",
            "--json",
        )
    )
    assert added["url"] == "http://127.0.0.1:8188"
    assert added["labels"] == {"gpu": "a100", "region": "sh"}
    assert (added["state"], added["healthy"], added["capacity"]) == ("active", True, 2)
    listed = as_json(invoke("instances", "list", "--json"))
    assert [(i["id"], i["busy"]) for i in listed] == [(added["id"], 0)]
    drained = as_json(invoke("instances", "drain", added["url"], "--json"))
    assert drained["state"] == "draining"
    assert as_json(invoke("instances", "drain", added["id"], "--resume", "--json"))["state"] == (
        "active"
    )
    invoke("instances", "remove", added["id"])
    assert as_json(invoke("instances", "list", "--json")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("instances", "add", "ftp://x"), "INVALID_PARAMETER: instance URL 'ftp://x' must be"),
        (("instances", "add", "http://h:1", "--label", "gpu"), "label 'gpu' must look like"),
        (("instances", "drain", "inst_missing"), "INSTANCE_NOT_FOUND: no engine instance"),
        (("instances", "remove", "http://nowhere:1"), "INSTANCE_NOT_FOUND"),
    ],
)
def test_instance_errors(invoke, args, message):
    assert message in invoke(*args, code=1).stderr


def test_duplicate_url_is_a_conflict(invoke):
    invoke("instances", "add", "http://127.0.0.1:9000")
    result: Result = invoke("instances", "add", "http://127.0.0.1:9000/", code=1)
    assert "INSTANCE_EXISTS: http://127.0.0.1:9000 is already registered" in result.stderr


class FakeComfy:
    """A loopback server answering /system_stats the way ComfyUI does (or failing)."""

    def __init__(self) -> None:
        self.status = 200
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        body = json.dumps({"system": {"comfyui_version": "0.3.64"}, "devices": []}).encode()
        writer.write(
            f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def comfy() -> AsyncIterator[FakeComfy]:
    fake = FakeComfy()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake


async def _state(runtime: Runtime, instance_id: str) -> LoadedInstance:
    found = await instances.list_instances(runtime.db)
    return next(i for i in found if i.id == instance_id)


async def test_probes_mark_instances_unhealthy_after_repeated_failures(runtime, comfy):
    added = await instances.add_instance(
        runtime.db, url=f"http://127.0.0.1:{comfy.port}", capacity=1, labels={}
    )
    async with httpx.AsyncClient() as client:
        await health.probe_all(runtime.db, client)
        assert (await _state(runtime, added.id)).healthy is True
        comfy.status = 500
        for expected in (True, True, False):  # tolerates two failures (stalls), not three
            await health.probe_all(runtime.db, client)
            state = await _state(runtime, added.id)
            assert state.healthy is expected
        assert state.last_error == "/system_stats answered 500"
        comfy.status = 200
        await health.probe_all(runtime.db, client)
        assert (await _state(runtime, added.id)).healthy is True
