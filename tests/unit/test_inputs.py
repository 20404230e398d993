"""Manifest validation and media parsing (pure)."""

from __future__ import annotations

import pytest

from tests.support.factories import data_uri, png_bytes
from wfrun.domain.manifest import Binding, InputSpec, validate_inputs
from wfrun.domain.media import MediaSource, MediaValueError, parse_media_value, sniff_mime
from wfrun.errors import InvalidWorkflowInput

IMAGE = InputSpec(
    key="n1_image",
    type="image",
    binding=Binding("1", "image"),
    multiple=True,
    max_items=2,
    accept=("image/png",),
    max_size_bytes=10_000,
)
SEED = InputSpec(key="n3_seed", type="seed", binding=Binding("3", "seed"), default_value=7)
FLAG = InputSpec(key="n4_flag", type="boolean", binding=Binding("4", "flag"), default_value=False)


def test_defaults_fill_missing_inputs():
    result = validate_inputs((SEED, FLAG), {})
    assert result.values == {"n3_seed": 7, "n4_flag": False}


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ([], "input n1_image must not be an empty list"),
        ([data_uri(png_bytes())] * 3, "input n1_image takes at most 2 items"),
        ([data_uri(png_bytes(200, 200, (1, 2, 3)) * 1)], None),
        ([{"uri": 5}], "input n1_image[0] object must carry a string 'uri' (or 'url')"),
        (
            [{"source_type": "upload", "url": "x"}],
            "input n1_image[0] source_type 'upload' is not supported",
        ),
    ],
)
def test_media_lists(value, detail):
    if detail is None:
        assert validate_inputs((IMAGE,), {"n1_image": value}).media["n1_image"]
        return
    with pytest.raises(InvalidWorkflowInput) as caught:
        validate_inputs((IMAGE,), {"n1_image": value})
    assert caught.value.detail == detail


def test_media_size_limit_names_the_item():
    big = data_uri(png_bytes(400, 400) + b"\0" * 20_000)
    with pytest.raises(InvalidWorkflowInput, match=r"input n1_image\[0\] is \d+ bytes; the limit"):
        validate_inputs((IMAGE,), {"n1_image": [big]})


@pytest.mark.parametrize(
    ("value", "source"),
    [
        ("https://example.com/a.png", MediaSource.URL),
        ("asset://asset_" + "a" * 32, MediaSource.ASSET),
        (
            {"source_type": "url", "url": "http://x.test/v.mp4", "role": "reference_image"},
            MediaSource.URL,
        ),
        ({"uri": data_uri(png_bytes()), "role": "first_frame", "label": "a"}, MediaSource.DATA),
    ],
)
def test_every_media_spelling_parses(value, source):
    ref = parse_media_value(value)
    assert ref.source is source
    if isinstance(value, dict) and "role" in value:
        assert ref.role == value["role"]


@pytest.mark.parametrize("bad", ["ftp://x/y", "asset://nope", "data:;base64,AA==", 42, None])
def test_bad_media_values(bad):
    with pytest.raises(MediaValueError):
        parse_media_value(bad)


def test_sniffing():
    assert sniff_mime(png_bytes()) == "image/png"
    assert sniff_mime(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert sniff_mime(b"hello") is None


def test_seed_range_and_booleans_are_strict():
    with pytest.raises(InvalidWorkflowInput, match="n3_seed must be between 0 and"):
        validate_inputs((SEED,), {"n3_seed": -1})
    with pytest.raises(InvalidWorkflowInput, match="n3_seed must be an integer, got boolean"):
        validate_inputs((SEED,), {"n3_seed": True})
    with pytest.raises(InvalidWorkflowInput, match="n4_flag must be a boolean, got integer 1"):
        validate_inputs((FLAG,), {"n4_flag": 1})
