"""Seedance request rules, tokens and prices (pure domain) and Ark's wire format, with property
tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wfrun.api.errors import STATUS_BY_CATEGORY
from wfrun.domain import seedance
from wfrun.domain.pricing import settle
from wfrun.domain.seedance import PIXELS, ModelPrice, PriceBook, parse_video_request
from wfrun.engines.seedance import wire
from wfrun.errors import InvalidWorkflowInput

FAST = "doubao-seedance-2-0-fast-260128"
BOOK = PriceBook(
    {FAST: ModelPrice(per_million=3_700_000_000, per_million_with_video=2_200_000_000)}, {}
)


def test_token_formula_matches_arks_reported_usage():
    # seedance-ark.md §1.6/§2.1: 1280×720, 5 s → usage.completion_tokens = 108 900
    assert seedance.output_tokens(1280, 720, 5) == 108_900
    assert BOOK.cost(FAST, "720p", 108_900, with_video=False) == 402_930_000  # 4.0293 CNY
    assert BOOK.cost(FAST, "720p", 108_900, with_video=True) == 239_580_000


def test_quote_takes_the_largest_frame_for_adaptive_and_the_longest_for_minus_one():
    adaptive = parse_video_request({"model": FAST, "prompt": "x", "duration": -1})
    assert adaptive.duration == 15
    largest = max(w * h for w, h in PIXELS["720p"].values())
    assert seedance.quote_tokens(adaptive) == -(-largest * (24 * 15 + 1) // 1024)
    fixed = parse_video_request({"model": FAST, "prompt": "x", "ratio": "9:16"})
    assert seedance.quote_tokens(fixed) == seedance.output_tokens(720, 1280, 5)


@pytest.mark.parametrize(
    ("values", "detail"),
    [
        ({}, "input model is required"),
        ({"model": "x"}, "input model must be one of"),
        ({"model": FAST}, "input prompt is required when no image or video is given"),
        ({"model": FAST, "prompt": "x", "resolution": "1080p"}, "must be one of 480p, 720p"),
        ({"model": FAST, "prompt": "x", "duration": 3}, "between 4 and 15"),
        ({"model": FAST, "prompt": "x", "duration": True}, "must be an integer"),
        ({"model": FAST, "last_frame": "https://a.test/l.png"}, "needs first_frame"),
        (
            {"model": FAST, "images": ["https://a.test/1.png"] * 10},
            "images takes at most 9 items",
        ),
        ({"model": FAST, "images": ["ftp://a.test/1.png"]}, "input images[0] must be"),
        (
            {"model": FAST, "images": ["data:audio/mpeg;base64,SUQz"]},
            "images[0] must be image data",
        ),
        (
            {"model": "doubao-seedance-1-5-pro-251215", "images": ["https://a.test/1.png"]},
            "reference media are not supported",
        ),
        ({"model": FAST, "prompt": "x", "watermark": "yes"}, "watermark must be a boolean"),
        (
            {"model": FAST, "prompt": "x", "generation_category": "music_video"},
            "generation_category must be one of",
        ),
    ],
)
def test_bad_requests_name_the_input(values, detail):
    with pytest.raises(InvalidWorkflowInput, match=detail.replace("[", r"\[").replace("]", r"\]")):
        parse_video_request(values)


def test_modes_and_content_order():
    request = parse_video_request(
        {
            "model": FAST,
            "prompt": "图片1 --rs 1080p --dur 12 跑步",
            "generation_category": "image_to_video",
            "first_frame": {"uri": "https://a.test/f.png", "role": "first_frame"},
        }
    )
    assert request.category == "first_frame_to_video"
    assert request.prompt == "图片1 跑步"  # billed parameters cannot be overridden (§1.3)
    glued = parse_video_request({"model": FAST, "prompt": "小猫--dur 15 --rs 1080p"})
    assert glued.prompt == "小猫"
    content = wire.ark_content(request, ["https://signed.test/f.png"])
    assert content == [
        {"type": "text", "text": "图片1 跑步"},
        {
            "type": "image_url",
            "image_url": {"url": "https://signed.test/f.png"},
            "role": "first_frame",
        },
    ]


@given(st.text(min_size=1, max_size=40))
def test_fingerprint_expiry_stays_in_arks_range_and_is_stable(run_id):
    value = wire.fingerprint_expiry(run_id, 172_800)
    assert 169_201 <= value <= 172_800
    assert value == wire.fingerprint_expiry(run_id, 172_800)


@pytest.mark.parametrize(
    ("code", "engine_code", "status"),
    [
        (
            "InputImageSensitiveContentDetected.PrivacyInformation",
            "CONTENT_REAL_PERSON_DETECTED",
            400,
        ),
        ("InputTextSensitiveContentDetected", "CONTENT_SAFETY_REJECTED", 400),
        ("OutputVideoSensitiveContentDetected.PolicyViolation", "CONTENT_SAFETY_REJECTED", 422),
        ("InvalidParameter.UnsupportedParameter", "PROVIDER_REJECTED", 400),
        ("AuthenticationError", "PROVIDER_UNAVAILABLE", 503),
        ("Expired", "ENGINE_TIMEOUT", 504),
    ],
)
def test_ark_codes_map_to_engine_codes(code, engine_code, status):
    failure = wire.classify_ark_code(code)
    category = failure.category or failure.code.category
    assert (failure.code.name, STATUS_BY_CATEGORY[category]) == (engine_code, status)


@given(
    ratio=st.sampled_from([*seedance.RATIOS, "adaptive"]),
    resolution=st.sampled_from(["480p", "720p"]),
    duration=st.integers(4, 15),
    actual_ratio=st.sampled_from(seedance.RATIOS),
    fee=st.integers(0, 10**7),
    with_video=st.booleans(),
)
def test_usage_settlement_never_exceeds_the_freeze(
    ratio, resolution, duration, actual_ratio, fee, with_video
):
    """The quote is an upper bound of what Ark can bill for the request, so settling by
    reported usage releases the rest and never charges a shortfall."""
    values = {"model": FAST, "prompt": "x", "ratio": ratio, "resolution": resolution}
    values["duration"] = duration
    if with_video:
        values["videos"] = ["https://a.test/v.mp4"]
    request = parse_video_request(values)
    quoted = seedance.quote_cost(BOOK, request)
    shown = actual_ratio if ratio == "adaptive" else ratio
    width, height = PIXELS[resolution][shown]
    tokens = seedance.output_tokens(width, height, duration)
    external = BOOK.cost(FAST, resolution, tokens, with_video=with_video)
    result = settle(
        frozen=fee + quoted,
        compute=fee,
        external=external,
        quoted_external=quoted,
        accept_external_cost_risk=False,
    )
    assert result.shortfall_amount == 0
    assert result.absorbed_external_cost == 0
    assert result.final_amount + result.released_amount == fee + quoted
