"""A Seedance video request: its parsing and the rules it must keep (pure).

A request comes from a model run's ``inputs`` or a ``seedance`` revision's bound inputs;
:func:`parse_video_request` checks it against the model's abilities and the mutually
exclusive modes (seedance-ark.md §1.4) so that a bad request is a 400 at submit, never a
billable upstream surprise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wfrun.domain.media import MediaRef, MediaSource, MediaValueError, parse_media_value
from wfrun.domain.seedance.models import CATEGORIES, MODELS, RATIOS, ModelInfo
from wfrun.errors import InvalidWorkflowInput

_CATEGORY_ALIASES = {"image_to_video": "first_frame_to_video"}
_PARAM_SUFFIX = re.compile(r"--[A-Za-z][\w-]*(?:\s+(?!--)\S+)?")


@dataclass(frozen=True)
class VideoRequest:
    """One validated Seedance generation request."""

    model: str
    prompt: str
    category: str
    first_frame: MediaRef | None
    last_frame: MediaRef | None
    images: tuple[MediaRef, ...]
    videos: tuple[MediaRef, ...]
    audios: tuple[MediaRef, ...]
    resolution: str
    ratio: str
    duration: int
    generate_audio: bool | None = None
    watermark: bool | None = None
    real_person: bool = False

    @property
    def with_video_input(self) -> bool:
        return bool(self.videos)


def strip_parameter_suffixes(prompt: str) -> str:
    """§1.3: ``--rs 1080p --dur 12`` in a prompt overrides billed parameters; remove them."""
    return re.sub(r"[ \t]{2,}", " ", _PARAM_SUFFIX.sub(" ", prompt)).strip()


# ---- parsing -----------------------------------------------------------------------------


def parse_video_request(values: Mapping[str, Any], *, prefix: str = "") -> VideoRequest:
    """Validate ``values`` (model, prompt, generation_category, first_frame, last_frame, images,
    videos, audios, resolution, ratio, duration, contains_real_person_material, …).

    Raises:
        InvalidWorkflowInput: naming the offending input.
    """
    model = _model(values, prefix)
    resolution = _choice(values, "resolution", model.resolutions, model.default_resolution, prefix)
    ratio = _choice(values, "ratio", (*RATIOS, "adaptive"), "adaptive", prefix)
    request = VideoRequest(
        model=model.model_id,
        prompt=_prompt(values, prefix),
        category=_category(values, prefix),
        first_frame=_one_media(values, "first_frame", "image", prefix),
        last_frame=_one_media(values, "last_frame", "image", prefix),
        images=_media_list(values, "images", "image", prefix),
        videos=_media_list(values, "videos", "video", prefix),
        audios=_media_list(values, "audios", "audio", prefix),
        resolution=resolution,
        ratio=ratio,
        duration=_duration(values, model, prefix),
        generate_audio=_flag(values, "generate_audio", prefix),
        watermark=_flag(values, "watermark", prefix),
        real_person=bool(_flag(values, "contains_real_person_material", prefix)),
    )
    _check_mode(request, model, prefix)
    return request


def _bad(prefix: str, name: str, message: str) -> InvalidWorkflowInput:
    return InvalidWorkflowInput(f"input {prefix}{name} {message}")


def _model(values: Mapping[str, Any], prefix: str) -> ModelInfo:
    name = values.get("model")
    if not isinstance(name, str) or not name:
        raise _bad(prefix, "model", "is required (a Seedance Model ID)")
    model = MODELS.get(name)
    if model is None:
        known = ", ".join(sorted(MODELS))
        raise _bad(prefix, "model", f"must be one of {known} (got {name!r})")
    return model


def _prompt(values: Mapping[str, Any], prefix: str) -> str:
    prompt = values.get("prompt", "")
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise _bad(prefix, "prompt", "must be a string")
    if len(prompt) > 4000:
        raise _bad(prefix, "prompt", f"must be at most 4000 characters (got {len(prompt)})")
    return strip_parameter_suffixes(prompt)


def _category(values: Mapping[str, Any], prefix: str) -> str:
    raw = values.get("generation_category") or ""
    if not isinstance(raw, str):
        raise _bad(prefix, "generation_category", "must be a string")
    category = _CATEGORY_ALIASES.get(raw, raw)
    if category and category not in CATEGORIES:
        raise _bad(prefix, "generation_category", f"must be one of {', '.join(CATEGORIES)}")
    return category


def _choice(
    values: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str, prefix: str
) -> str:
    value = values.get(name)
    if value is None or value == "":
        return default
    if value not in allowed:
        raise _bad(prefix, name, f"must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


def _duration(values: Mapping[str, Any], model: ModelInfo, prefix: str) -> int:
    raw = values.get("duration")
    low, high = model.durations
    if raw is None or raw == "":
        return 5
    if isinstance(raw, str) and re.fullmatch(r"-?\d{1,3}", raw.strip()):
        raw = int(raw)  # chenyu's own example sends "5"
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _bad(prefix, "duration", f"must be an integer number of seconds (got {raw!r})")
    if raw == -1:  # §1.3: the model chooses, and bills it; quote the longest
        return high
    if not low <= raw <= high:
        raise _bad(prefix, "duration", f"must be between {low} and {high} s for {model.model_id}")
    return raw


def _flag(values: Mapping[str, Any], name: str, prefix: str) -> bool | None:
    value = values.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise _bad(prefix, name, f"must be a boolean (got {value!r})")


def _ref(value: Any, name: str, kind: str, prefix: str) -> MediaRef:
    try:
        ref = parse_media_value(value)
    except MediaValueError as exc:
        raise _bad(prefix, name, str(exc)) from None
    if ref.source is MediaSource.DATA:
        declared = (ref.mime_type or "").split("/", 1)[0]
        if kind == "video":  # §1.4: "Video: … Base64 is not accepted."
            raise _bad(prefix, name, "must be a URL or asset:// URI (Ark takes no base64 video)")
        if declared != kind:
            raise _bad(prefix, name, f"must be {kind} data (got {ref.mime_type})")
    return ref


def _one_media(values: Mapping[str, Any], name: str, kind: str, prefix: str) -> MediaRef | None:
    value = values.get(name)
    if value is None or value == "":
        return None
    return _ref(value, name, kind, prefix)


def _media_list(
    values: Mapping[str, Any], name: str, kind: str, prefix: str
) -> tuple[MediaRef, ...]:
    value = values.get(name)
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(_ref(item, f"{name}[{i}]", kind, prefix) for i, item in enumerate(items))


def _check_mode(request: VideoRequest, model: ModelInfo, prefix: str) -> None:
    """§1.4: first-frame, first+last and multimodal reference are mutually exclusive."""
    frames = request.first_frame is not None or request.last_frame is not None
    references = bool(request.images or request.videos or request.audios)
    if frames and references:
        raise _bad(
            prefix,
            "images",
            "cannot be combined with first_frame/last_frame (Ark's modes are exclusive)",
        )
    if request.last_frame is not None and request.first_frame is None:
        raise _bad(prefix, "last_frame", "needs first_frame as well")
    if request.last_frame is not None and not model.first_last:
        raise _bad(prefix, "last_frame", f"is not supported by {model.model_id}")
    if references and not model.multimodal:
        raise _bad(prefix, "images", f"reference media are not supported by {model.model_id}")
    for name, items, most in (
        ("images", request.images, 9),
        ("videos", request.videos, 3),
        ("audios", request.audios, 3),
    ):
        if len(items) > most:
            raise _bad(prefix, name, f"takes at most {most} items (got {len(items)})")
    if request.audios and not (request.images or request.videos):
        raise _bad(prefix, "audios", "need at least one reference image or video as well")
    if not request.prompt and not frames and not references:
        raise _bad(prefix, "prompt", "is required when no image or video is given")
    _check_category(request, prefix)


def _check_category(request: VideoRequest, prefix: str) -> None:
    expected = {
        "text_to_video": not (request.first_frame or request.images or request.videos),
        "first_frame_to_video": request.first_frame is not None and request.last_frame is None,
        "first_last_frame_to_video": request.last_frame is not None,
        "reference_to_video": bool(request.images or request.videos),
    }
    if request.category and not expected[request.category]:
        raise _bad(
            prefix,
            "generation_category",
            f"{request.category!r} does not match the media given",
        )
