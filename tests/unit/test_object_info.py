"""Publish-time graph checks against the recorded /object_info of a real ComfyUI 0.3.64."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wfrun.engines.local.nodes import object_info as local_object_info
from wfrun.engines.object_info import validate
from wfrun.services.seed import demo_package

CAPTURE = Path(__file__).parents[3] / "shared" / "comfyui" / "captures" / "object_info.json"


@pytest.fixture(scope="module", params=["captured", "local"])
def info(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The real server's /object_info (from shared/), and wfrun's local node set."""
    if request.param == "local":
        return local_object_info()
    if not CAPTURE.exists():
        pytest.fail(f"{CAPTURE} is missing: the shared captures must sit beside the repository")
    data: dict[str, Any] = json.loads(CAPTURE.read_text())
    return data


def test_demo_graph_is_valid(info):
    graph = demo_package()["graph"]
    assert validate(graph, info, [("2", "width"), ("1", "image")]) == []


def _broken(change: Any) -> dict[str, Any]:
    graph: dict[str, Any] = demo_package()["graph"]
    change(graph)
    return graph


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda g: g["3"].update(class_type="Nope"),
            "node 3 (Nope): invalid_prompt: class Nope is not available",
        ),
        (
            lambda g: g["2"]["inputs"].update(crop="sideways"),
            "node 2 (ImageScale) input 'crop': value_not_in_list: 'sideways' not in the 2 options",
        ),
        (
            lambda g: g["2"]["inputs"].update(width=-1),
            "node 2 (ImageScale) input 'width': value_smaller_than_min: Value -1 smaller than min of 0",
        ),
        (
            lambda g: g["2"]["inputs"].update(width="wide"),
            "node 2 (ImageScale) input 'width': invalid_input_type: 'wide' is not a valid INT",
        ),
        (
            lambda g: g["4"]["inputs"].update(image=["9", 0]),
            "node 4 (ImageBlur) input 'image': bad_linked_input: linked node 9 does not exist",
        ),
        (
            lambda g: g["4"]["inputs"].update(image=["6", 0]),
            (
                "node 4 (ImageBlur) input 'image': return_type_mismatch: received STRING, the input "
                "takes IMAGE"
            ),
        ),
        (
            lambda g: g["3"]["inputs"].pop("image"),
            "node 3 (ImageInvert) input 'image': required_input_missing: Required input is missing",
        ),
    ],
)
def test_each_problem_is_named_precisely(info, change, expected):
    assert [str(p) for p in validate(_broken(change), info)] == [expected]


def test_bindings_must_name_real_inputs(info):
    problems = validate(demo_package()["graph"], info, [("2", "widht"), ("8", "x")])
    assert [str(p) for p in problems] == [
        "node 2 (ImageScale) input 'widht': bad_binding: ImageScale has no input 'widht'",
        "node 8 input 'x': bad_binding: bound node is not in the graph",
    ]
