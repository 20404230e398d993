"""The one-pass package report and ``packages init``'s draft, as pure functions (no database)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from wfrun.domain import package_report as r
from wfrun.errors import InvalidWorkflowPackage
from wfrun.services import package_authoring as authoring
from wfrun.services.packages import check_document, check_offline, input_specs, parse_package
from wfrun.services.seed import demo_package

DATA = Path(__file__).parents[1] / "data"
OBJECT_INFO = json.loads((DATA / "comfyui_object_info.json").read_text())


def lines(document: Any) -> list[str]:
    return [str(p) for p in check_document(document).problems]


def test_the_demo_package_has_no_problem():
    report = check_document(demo_package())
    assert (report.ok, report.problems) == (True, ())
    assert report.package is not None


def test_a_ui_format_workflow_says_how_to_export_it():
    ui = {"last_node_id": 3, "nodes": [{"id": 1, "type": "LoadImage"}], "links": [], "version": 0.4}
    assert lines(ui) == [
        (
            '(document): a ComfyUI UI-format workflow ("nodes" and "links" arrays), not a package'
            ' — export the workflow with "Save (API format)" in ComfyUI, then wrap it with'
            " `wfrun packages init FILE`"
        )
    ]
    package = demo_package() | {"graph": ui}
    assert lines(package) == [
        (
            'graph: is a UI-format workflow ("nodes" and "links" arrays), not an API-format graph'
            ' — export the workflow with "Save (API format)" in ComfyUI'
        )
    ]


def test_a_bare_graph_says_to_wrap_it():
    assert lines(demo_package()["graph"]) == [
        (
            "(document): a bare ComfyUI API-format graph, not a package"
            " — wrap it with `wfrun packages init FILE`"
        )
    ]


def test_a_float_price_says_to_write_a_string():
    document = demo_package()
    document["pricing"]["fixed_fee"] = 0.02
    document["pricing"]["price_per_second"] = 0.5
    assert lines(document) == [
        'pricing.fixed_fee: is the number 0.02; amounts are exact — write amounts as strings, e.g. "0.02"',
        'pricing.price_per_second: is the number 0.5; amounts are exact — write amounts as strings, e.g. "0.02"',
    ]


def test_three_problems_are_reported_together():
    document = demo_package()
    document["pricing"]["fixed_fee"] = 0.02  # schema (a hint)
    document["slug"] = "Demo Poster"  # schema
    document["inputs"].append({"key": "n9_x", "type": "integer"})  # meaning
    report = check_document(document)
    assert report.package is None
    assert [str(p) for p in report.problems] == [
        'pricing.fixed_fee: is the number 0.02; amounts are exact — write amounts as strings, e.g. "0.02"',
        "slug: must be 1-100 lowercase letters, digits or '-', starting with a letter or digit",
        "inputs.5 (n9_x): bound node 9 is not in the graph",
    ]
    with pytest.raises(InvalidWorkflowPackage) as raised:
        parse_package(document)
    assert raised.value.detail == "; ".join(str(p) for p in report.problems)


def test_schema_errors_lose_the_pydantic_noise():
    document = demo_package()
    document["pricing"]["fixed_fee"] = "0.000000001"
    document["pricing"]["external_estimate"] = ["1"]  # str | int: one problem, not two
    document["pricng"] = {}
    assert lines(document) == [
        "pricing.fixed_fee: '0.000000001' has more than 8 decimal places",
        (
            "pricing.external_estimate: Input should be a valid string or Input should be a valid "
            "integer"
        ),
        "pricng: unknown field (the format allows no others) — did you mean 'pricing'?",
    ]


def test_placeholders_and_an_empty_output_list_are_named():
    document = demo_package()
    document["pricing"] = dict(authoring.PRICE_PLACEHOLDERS)
    document["outputs"] = []
    assert lines(document) == [
        'pricing.fixed_fee: not filled in: yuan charged per run, a decimal string like "0.02"',
        (
            'pricing.price_per_second: not filled in: yuan per second of execution, like "0.002"'
            ' (or "0")'
        ),
        (
            "pricing.estimated_seconds: not filled in: seconds a typical run takes (the quote), "
            "like 10"
        ),
        (
            "outputs: lists no output — list a node that saves a result (SaveImage, SaveVideo, "
            "PreviewAny, …)"
        ),
    ]


def test_nodes_without_a_class_are_named():
    document = demo_package()
    document["graph"]["2"] = {"inputs": {}}
    document["graph"]["3"] = "ImageInvert"
    assert lines(document) == [
        "graph.2: the node has no class_type",
        "graph.3: a node must be an object",
    ]


def test_a_disabled_candidate_is_checked_for_form_only_and_left_out():
    document = demo_package()
    document["inputs"].append(
        {"key": "n9_ghost", "enabled": False, "type": "integer", "default_value": 5}
    )
    report = check_document(document)
    assert report.ok
    assert report.package is not None
    assert [s.key for s in input_specs(report.package)] == [
        "n1_image",
        "n2_width",
        "n2_upscale_method",
        "n4_blur_radius",
        "n6_value",
    ]
    document["inputs"][-1]["enabled"] = "maybe"
    assert lines(document) == [
        "inputs.5.enabled: Input should be a valid boolean, unable to interpret input"
    ]


def test_problem_json():
    problem = r.PackageProblem("pricing.fixed_fee", "is the number 1.5", r.AMOUNT_HINT)
    assert problem.to_json() == {
        "path": "pricing.fixed_fee",
        "message": "is the number 1.5",
        "hint": 'write amounts as strings, e.g. "0.02"',
    }


# ---- packages init's draft -------------------------------------------------------------------

SCALE = json.loads((DATA / "comfyui_loadimage_scale.api.json").read_text())


def test_draft_types_widgets_from_the_object_info():
    draft = authoring.draft_package(
        SCALE, authoring.Draft("comfyui", "scale", "Scale", OBJECT_INFO)
    )
    assert draft["inputs"] == [
        {
            "key": "n10_image",
            "enabled": True,
            "type": "image",
            "display_name": "Load Image: image",
            "required": True,
            "accept": ["image/png", "image/jpeg", "image/webp"],
            "max_size_bytes": 20971520,
        },
        {
            "key": "n11_upscale_method",
            "enabled": False,
            "display_name": "Upscale Image: upscale_method",
            "type": "enum",
            "options": ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"],
            "default_value": "bilinear",
        },
        {
            "key": "n11_width",
            "enabled": False,
            "display_name": "Upscale Image: width",
            "type": "integer",
            "min": 0,
            "max": 16384,
            "step": 1,
            "default_value": 64,
        },
        {
            "key": "n11_height",
            "enabled": False,
            "display_name": "Upscale Image: height",
            "type": "integer",
            "min": 0,
            "max": 16384,
            "step": 1,
            "default_value": 48,
        },
        {
            "key": "n11_crop",
            "enabled": False,
            "display_name": "Upscale Image: crop",
            "type": "enum",
            "options": ["disabled", "center"],
            "default_value": "disabled",
        },
        {
            "key": "n12_filename_prefix",
            "enabled": False,
            "display_name": "Save Image: filename_prefix",
            "description": OBJECT_INFO["SaveImage"]["input"]["required"]["filename_prefix"][1][
                "tooltip"
            ],
            "type": "string",
            "default_value": "lab_scaled/run",
        },
    ]
    assert draft["outputs"] == [
        {"key": "n12_images", "type": "image", "display_name": "Save Image", "multiple": True}
    ]
    assert draft["pricing"] == authoring.PRICE_PLACEHOLDERS


SAMPLER_GRAPH = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 156680208700286,
            "steps": 20,
            "cfg": 8,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1.0,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["6", 0],
            "latent_image": ["5", 0],
        },
        "_meta": {"title": "Sampler"},
    },
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
    "7": {"class_type": "PrimitiveBoolean", "inputs": {"value": True}},
    "8": {"class_type": "LoadVideo", "inputs": {"file": "in.mp4"}},
    "9": {"class_type": "SaveVideo", "inputs": {"video": ["8", 0], "filename_prefix": "v"}},
    "10": {"class_type": "PreviewAny", "inputs": {"source": ["6", 0]}},
}


def _typed(draft: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        e["key"]: (e["type"], e.get("min"), e.get("max"), e.get("step"), e["enabled"])
        for e in draft["inputs"]
    }


def test_draft_knows_seeds_floats_text_booleans_and_video():
    with_info = authoring.draft_package(
        SAMPLER_GRAPH, authoring.Draft("comfyui", "s", "S", OBJECT_INFO)
    )
    assert _typed(with_info) == {
        "n3_seed": ("seed", None, None, None, False),
        "n3_steps": ("integer", 1, 10000, None, False),
        "n3_cfg": ("number", 0.0, 100.0, 0.1, False),
        "n3_sampler_name": ("enum", None, None, None, False),
        "n3_scheduler": ("enum", None, None, None, False),
        "n3_denoise": ("number", 0.0, 1.0, 0.01, False),
        "n6_text": ("text", None, None, None, False),
        "n7_value": ("boolean", None, None, None, False),
        "n8_file": ("video", None, None, None, True),
        "n9_filename_prefix": ("string", None, None, None, False),
    }
    assert with_info["inputs"][0]["display_name"] == "Sampler: seed"
    assert [(o["key"], o["type"], o["multiple"]) for o in with_info["outputs"]] == [
        ("n9_videos", "video", True),
        ("n10_text", "text", False),
    ]
    from_values = authoring.draft_package(SAMPLER_GRAPH, authoring.Draft("comfyui", "s", "S"))
    assert _typed(from_values) == {
        "n3_seed": ("seed", None, None, None, False),
        "n3_steps": ("integer", None, None, None, False),
        "n3_cfg": ("integer", None, None, None, False),
        "n3_sampler_name": ("string", None, None, None, False),
        "n3_scheduler": ("string", None, None, None, False),
        "n3_denoise": ("number", None, None, None, False),
        "n6_text": ("string", None, None, None, False),
        "n7_value": ("boolean", None, None, None, False),
        "n8_file": ("video", None, None, None, True),
        "n9_filename_prefix": ("string", None, None, None, False),
    }


def test_a_filled_draft_checks_clean_with_every_candidate_enabled():
    draft = authoring.draft_package(SCALE, authoring.Draft("local", "scale", "Scale"))
    assert [str(p) for p in check_document(draft).problems][:1] == [
        'pricing.fixed_fee: not filled in: yuan charged per run, a decimal string like "0.02"'
    ]
    filled = copy.deepcopy(draft)
    filled["pricing"] = {"fixed_fee": "0.02", "price_per_second": "0.001", "estimated_seconds": 3}
    for entry in filled["inputs"]:
        entry["enabled"] = True
    checked = check_offline(filled)
    assert checked.report.ok
    assert checked.notes == ("graph checked against wfrun's built-in nodes",)
    filled["inputs"][2]["default_value"] = 20000
    assert [str(p) for p in check_offline(filled).report.problems] == [
        (
            "inputs.2 (n11_width): default_value is invalid: input n11_width must be <= 16384 "
            "(got 20000)"
        )
    ]


def test_the_offline_check_uses_a_given_object_info():
    draft = authoring.draft_package(SCALE, authoring.Draft("comfyui", "scale", "Scale"))
    draft["pricing"] = {"fixed_fee": "0.02"}
    draft["graph"]["11"]["inputs"]["crop"] = "sideways"
    checked = check_offline(draft, OBJECT_INFO, source="info.json")
    assert [str(p) for p in checked.report.problems] == [
        (
            "graph: node 11 (ImageScale) input 'crop': value_not_in_list: 'sideways' not in the 2 "
            "options [checked against info.json]"
        )
    ]
    unchecked = check_offline(draft)
    assert unchecked.report.ok
    assert unchecked.notes[-1].startswith("graph not checked against any /object_info")


def test_subgraph_node_ids_get_keys_that_fit_and_explicit_binds():
    graph = {
        "75:10": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
        "75:11": {"class_type": "ImageInvert", "inputs": {"image": ["75:10", 0]}},
        "75:12": {
            "class_type": "SaveImage",
            "inputs": {"images": ["75:11", 0], "filename_prefix": "x"},
        },
    }
    draft = authoring.draft_package(graph, authoring.Draft("local", "sub", "Sub"))
    assert [(e["key"], e.get("bind")) for e in draft["inputs"]] == [
        ("n75_10_image", {"node": "75:10", "input": "image"}),
        ("n75_12_filename_prefix", {"node": "75:12", "input": "filename_prefix"}),
    ]
    assert [(o["key"], o.get("bind")) for o in draft["outputs"]] == [
        ("n75_12_images", {"node": "75:12"})
    ]
    draft["pricing"] = {"fixed_fee": "0.01"}
    draft["inputs"][1]["enabled"] = True
    report = check_document(draft)
    assert report.ok
    assert report.package is not None
    assert [
        (s.key, s.binding.node_id, s.binding.input_name) for s in input_specs(report.package)
    ] == [
        ("n75_10_image", "75:10", "image"),
        ("n75_12_filename_prefix", "75:12", "filename_prefix"),
    ]


def test_export_graph_reads_exports_and_refuses_the_rest():
    assert authoring.export_graph(SCALE) == SCALE
    assert authoring.export_graph({"prompt": SCALE, "client_id": "x"}) == SCALE
    refusals = [
        ({"nodes": [], "links": []}, 'export the workflow with "Save (API format)" in ComfyUI'),
        (demo_package(), "already a package — check it with `wfrun packages check`"),
        ([1, 2], "not a ComfyUI API-format graph"),
    ]
    for document, message in refusals:
        with pytest.raises(InvalidWorkflowPackage, match=re.escape(message)):
            authoring.export_graph(document)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("My Flow (v2)", "my-flow-v2"),
        ("___", "workflow"),
        ("Ünïcode", "n-code"),
        ("a" * 120, "a" * 100),
    ],
)
def test_slug_for(name, slug):
    assert authoring.slug_for(name) == slug


def test_render_is_the_same_json():
    draft = authoring.draft_package(SCALE, authoring.Draft("local", "scale", "Scale"))
    text = authoring.render(draft)
    assert json.loads(text) == draft
    assert '    "10": {"class_type": "LoadImage", "inputs": {"image": "lab_in.png"}},' in text
