"""Importing and publishing a comfyui workflow needs an instance able to run it, and its graph is
checked against that instance's ``/object_info`` — never silently against wfrun's built-in
node set (through the CLI, on both databases, with the ComfyUI stand-in)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.comfyui.standin import ComfyStandin
from tests.support.factories import operator
from wfrun.errors import InstancesUnreachable, NoAbleInstance
from wfrun.runtime import Runtime
from wfrun.services import catalog, instances
from wfrun.services.instance_check import CheckOptions, NodeCheck
from wfrun.services.seed import demo_package

CUSTOM_NODES = {
    "FancyInvert": {
        "input": {
            "required": {
                "image": ["IMAGE"],
                "strength": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0}],
            }
        },
        "output": ["IMAGE"],
        "output_is_list": [False],
        "output_name": ["IMAGE"],
        "name": "FancyInvert",
        "display_name": "Fancy invert",
        "description": "",
        "python_module": "custom_nodes.fancy",
        "category": "image",
        "output_node": False,
    }
}
"""A custom node class: the instance has it, wfrun's built-in node set does not."""


def fancy_package(**changes: Any) -> dict[str, Any]:
    """The shipped comfyui demo with its invert node replaced by the custom ``FancyInvert``."""
    document: dict[str, Any] = demo_package("comfyui_invert")
    document["graph"]["2"] = {
        "class_type": "FancyInvert",
        "inputs": {"image": ["1", 0], "strength": 0.5},
    }
    document.update(changes)
    return document


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def _write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "package.json"
    path.write_text(json.dumps(document))
    return str(path)


def _owner(invoke: Any) -> str:
    owner: str = as_json(invoke("accounts", "create", "Op", "--json"))["id"]
    return owner


def _add(invoke: Any, url: str, *labels: str) -> None:
    invoke("instances", "add", url, *[arg for label in labels for arg in ("--label", label)])


def test_comfyui_import_with_no_instance_is_refused(invoke, tmp_path):
    owner = _owner(invoke)
    package = _write(tmp_path, demo_package("comfyui_invert"))
    result = invoke("workflows", "import", package, "--owner", owner, "--publish", code=2)
    assert result.stderr == (
        "error: NO_ABLE_INSTANCE: no comfyui instance is registered; register one with "
        "`wfrun instances add URL` or pass --allow-no-instance\n"
    )
    assert as_json(invoke("workflows", "list", "--json")) == []


def test_refusal_names_the_instances_that_cannot_run_it(invoke, tmp_path):
    owner = _owner(invoke)
    _add(invoke, "http://10.0.0.5:8188", "gpu=t4", "region=sh")
    _add(invoke, "http://10.0.0.6:8188", "gpu=a100")
    invoke("instances", "drain", "http://10.0.0.6:8188")  # takes nothing new: not able
    package = _write(tmp_path, fancy_package(required_labels={"gpu": "a100"}))
    result = invoke("workflows", "import", package, "--owner", owner, "--publish", code=2)
    problem = (
        "no active comfyui instance has labels gpu=a100 (2 registered: http://10.0.0.5:8188 "
        "(gpu=t4,region=sh); http://10.0.0.6:8188 (gpu=a100, draining))"
    )
    assert result.stderr == (
        f"error: NO_ABLE_INSTANCE: {problem}; register one with "
        "`wfrun instances add URL --label gpu=a100` or pass --allow-no-instance\n"
    )
    assert as_json(invoke("workflows", "list", "--json")) == []

    args = ("workflows", "import", package, "--owner", owner, "--publish", "--allow-no-instance")
    accepted = as_json(invoke(*args, "--json"))
    assert accepted["published"] is True
    assert accepted["checked_against"] == []
    note = (
        f"accepted without an able instance (--allow-no-instance): {problem}; its runs wait "
        "until one is registered, and its graph was not checked against any /object_info"
    )
    assert accepted["notes"] == [note]
    assert "accepted without an able instance (--allow-no-instance)" in invoke(*args).stdout
    listed = as_json(invoke("workflows", "list", "--json"))
    assert [w["published_revision_id"] is not None for w in listed] == [True]


def test_graph_is_checked_against_the_instance_object_info(invoke, tmp_path, standin):
    standin.custom_nodes = CUSTOM_NODES
    owner = _owner(invoke)
    _add(invoke, standin.base_url)
    package = _write(tmp_path, fancy_package())
    args = ("workflows", "import", package, "--owner", owner, "--publish")
    imported = as_json(invoke(*args, "--json"))
    assert (imported["published"], imported["checked_against"], imported["notes"]) == (
        True,
        [standin.base_url],
        [],
    )
    assert f"\n  checked against {standin.base_url}/object_info" in invoke(*args).stdout
    assert len(standin.calls("GET", "/object_info")) == 2

    wrong = fancy_package()
    wrong["graph"]["2"]["class_type"] = "NoSuchNode"
    result = invoke("workflows", "import", _write(tmp_path, wrong), "--owner", owner, code=1)
    assert result.stderr == (
        "error: INVALID_WORKFLOW_PACKAGE: graph: node 2 (NoSuchNode): invalid_prompt: class "
        f"NoSuchNode is not available [checked against {standin.base_url}/object_info]\n"
    )


def test_import_while_the_only_able_instance_is_down_is_refused_naming_it(
    invoke, tmp_path, standin
):
    standin.custom_nodes = CUSTOM_NODES
    owner = _owner(invoke)
    _add(invoke, standin.base_url)
    asyncio.run(standin.stop())
    package = _write(tmp_path, fancy_package())
    args = ("workflows", "import", package, "--owner", owner, "--publish")
    result = invoke(*args, code=2)
    assert result.stderr == (
        "error: INSTANCE_UNREACHABLE: cannot check the graph: no able comfyui instance answered "
        f"/object_info (1 tried: {standin.base_url} (connection refused)); retry when one is "
        "up, or pass --skip-node-check\n"
    )
    assert as_json(invoke("workflows", "list", "--json")) == []

    skipped = as_json(invoke(*args, "--skip-node-check", "--json"))
    assert (skipped["published"], skipped["checked_against"], skipped["notes"]) == (
        True,
        [],
        ["graph not checked against any instance's /object_info (--skip-node-check)"],
    )
    asyncio.run(standin.start())
    assert as_json(invoke(*args, "--json"))["checked_against"] == [standin.base_url]


def test_one_instance_down_is_reported_and_the_others_check(invoke, tmp_path, standin):
    standin.custom_nodes = CUSTOM_NODES
    other = ComfyStandin(tmp_path / "other")
    other.launch()
    try:
        owner = _owner(invoke)
        _add(invoke, standin.base_url)
        _add(invoke, other.base_url)
        asyncio.run(other.stop())
        args = ("workflows", "import", _write(tmp_path, fancy_package()), "--owner", owner)
        imported = as_json(invoke(*args, "--json"))
        assert imported["checked_against"] == [standin.base_url]
        assert imported["notes"] == [
            f"not checked against {other.base_url} (connection refused): it did not answer"
        ]
        asyncio.run(other.start())  # up, but without the custom node: runs could land there
        result = invoke(*args, code=1)
        assert (
            f"class FancyInvert is not available [checked against {other.base_url}/object_info]"
            in result.stderr
        )
    finally:
        other.shutdown()


def test_publish_checks_the_revision_as_an_import_does(invoke, tmp_path, standin):
    owner = _owner(invoke)
    package = _write(tmp_path, fancy_package())
    args = ("workflows", "import", package, "--owner", owner, "--allow-no-instance", "--json")
    imported = as_json(invoke(*args))
    workflow_id, revision_id = imported["workflow_id"], imported["revision_id"]
    publish = ("workflows", "publish", workflow_id, "--revision", revision_id)
    assert "error: NO_ABLE_INSTANCE: no comfyui instance is registered" in (
        invoke(*publish, code=2).stderr
    )

    _add(invoke, standin.base_url)  # an instance without the custom node
    refused = invoke(*publish, code=1).stderr
    assert f"class FancyInvert is not available [checked against {standin.base_url}" in refused
    asyncio.run(standin.stop())
    assert f"(1 tried: {standin.base_url} (connection refused))" in invoke(*publish, code=2).stderr
    shown = as_json(invoke("workflows", "show", workflow_id))
    assert shown["published_revision_id"] is None

    asyncio.run(standin.start())
    standin.custom_nodes = CUSTOM_NODES
    published = as_json(invoke(*publish, "--json"))
    assert published["published_revision_id"] == revision_id
    assert published["checked_against"] == [standin.base_url]
    assert f"now serves {revision_id}\n  checked against {standin.base_url}/object_info" in (
        invoke(*publish).stdout
    )


@pytest.fixture
async def silent_url() -> AsyncIterator[str]:
    """A loopback server that accepts connections and never answers."""
    release = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        release.set()
        server.close()
        await server.wait_closed()


async def test_an_instance_that_does_not_answer_is_named_with_the_wait(
    runtime: Runtime, silent_url: str
):
    await instances.add_instance(runtime.db, url=silent_url, capacity=1, labels={})
    owner = await operator(runtime)
    with pytest.raises(InstancesUnreachable) as refused:
        await catalog.import_package(
            runtime.db,
            owner_id=owner,
            document=fancy_package(),
            options=CheckOptions(timeout=0.2),
        )
    assert f"(1 tried: {silent_url} (no answer within 0.2 s))" in refused.value.detail


async def test_unhealthy_instances_are_able_and_reported(runtime: Runtime, standin: ComfyStandin):
    """Health aside: an instance marked unhealthy may be back; it still checks the graph, and
    both the refusal and the accepted import say it is unhealthy."""
    standin.custom_nodes = CUSTOM_NODES
    added = await instances.add_instance(
        runtime.db, url=standin.base_url, capacity=1, labels={"gpu": "t4"}
    )
    for _ in range(instances.UNHEALTHY_AFTER):
        await instances.record_probe(runtime.db, added.id, ok=False, error="probe timed out")
    owner = await operator(runtime)
    with pytest.raises(NoAbleInstance) as refused:
        await catalog.import_package(
            runtime.db, owner_id=owner, document=fancy_package(required_labels={"gpu": "a100"})
        )
    assert f"(1 registered: {standin.base_url} (gpu=t4, unhealthy))" in refused.value.detail
    imported = await catalog.import_package(
        runtime.db, owner_id=owner, document=fancy_package(required_labels={"gpu": "t4"})
    )
    assert imported.node_check == NodeCheck(
        (standin.base_url,), (f"{standin.base_url} is marked unhealthy: probe timed out",)
    )
