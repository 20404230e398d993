"""Seedance video requests on Volcengine Ark: parsing, rules, tokens and prices (pure).

Facts cite ``shared/reference/seedance-ark.md`` (§). A request comes from a model run's
``inputs`` or a ``seedance`` revision's bound inputs; :func:`parse_video_request` checks it
against the model's abilities and the mutually exclusive modes (§1.4) so that a bad request
is a 400 at submit, never a billable upstream surprise.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wfrun.domain.media import MediaRef, MediaSource, MediaValueError, parse_media_value
from wfrun.domain.money import round_div
from wfrun.errors import InvalidWorkflowInput

FPS = 24  # §1.3: output is mp4 at 24 fps
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
# §1.3 output pixel sizes for Seedance 2.0 and 1.5 Pro.
PIXELS: dict[str, dict[str, tuple[int, int]]] = {
    "480p": {
        "16:9": (864, 496),
        "4:3": (752, 560),
        "1:1": (640, 640),
        "3:4": (560, 752),
        "9:16": (496, 864),
        "21:9": (992, 432),
    },
    "720p": {
        "16:9": (1280, 720),
        "4:3": (1112, 834),
        "1:1": (960, 960),
        "3:4": (834, 1112),
        "9:16": (720, 1280),
        "21:9": (1470, 630),
    },
    "1080p": {
        "16:9": (1920, 1080),
        "4:3": (1664, 1248),
        "1:1": (1440, 1440),
        "3:4": (1248, 1664),
        "9:16": (1080, 1920),
        "21:9": (2206, 946),
    },
}
CATEGORIES = (
    "text_to_video",
    "first_frame_to_video",
    "first_last_frame_to_video",
    "reference_to_video",
)
_CATEGORY_ALIASES = {"image_to_video": "first_frame_to_video"}
_PARAM_SUFFIX = re.compile(r"--[A-Za-z][\w-]*(?:\s+(?!--)\S+)?")


@dataclass(frozen=True)
class ModelInfo:
    """What one Seedance model accepts (§1.2, §1.3, §1.4)."""

    model_id: str
    resolutions: tuple[str, ...]
    durations: tuple[int, int]
    multimodal: bool  # 2.0 series: reference images/videos/audios
    first_last: bool
    default_resolution: str = "720p"


MODELS: dict[str, ModelInfo] = {
    m.model_id: m
    for m in (
        ModelInfo("doubao-seedance-2-0-260128", ("480p", "720p", "1080p"), (4, 15), True, True),
        ModelInfo("doubao-seedance-2-0-fast-260128", ("480p", "720p"), (4, 15), True, True),
        ModelInfo("doubao-seedance-2-0-mini-260615", ("480p", "720p"), (4, 15), True, True),
        ModelInfo(
            "doubao-seedance-1-5-pro-251215", ("480p", "720p", "1080p"), (4, 12), False, True
        ),
    )
}


@dataclass(frozen=True)
class ModelPrice:
    """CNY minor units (1e-8) per million output tokens (§2.2)."""

    per_million: int
    per_million_with_video: int


@dataclass(frozen=True)
class PriceBook:
    """Per-model prices; ``by_resolution`` overrides the model's default for one resolution."""

    models: Mapping[str, ModelPrice]
    by_resolution: Mapping[tuple[str, str], ModelPrice]

    def price(self, model: str, resolution: str) -> ModelPrice:
        found = self.by_resolution.get((model, resolution)) or self.models.get(model)
        if found is None:
            raise InvalidWorkflowInput(f"input model {model!r} has no price on this server")
        return found

    def overridden(self, token_prices: Mapping[str, tuple[int, int]]) -> PriceBook:
        """This book with a revision's own prices (``model`` or ``model@resolution``) on top."""
        if not token_prices:
            return self
        models, by_resolution = dict(self.models), dict(self.by_resolution)
        for name, (plain, with_video) in token_prices.items():
            model, _, resolution = name.partition("@")
            price = ModelPrice(plain, with_video)
            if resolution:
                by_resolution[(model, resolution)] = price
            else:
                models[model] = price
                by_resolution = {k: v for k, v in by_resolution.items() if k[0] != model}
        return PriceBook(models, by_resolution)

    def cost(self, model: str, resolution: str, tokens: int, *, with_video: bool) -> int:
        """What ``tokens`` output tokens cost (rounded half up once)."""
        price = self.price(model, resolution)
        rate = price.per_million_with_video if with_video else price.per_million
        return round_div(tokens * rate, 1_000_000)


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

    def media(self) -> list[tuple[str, str, MediaRef]]:
        """Every media item as (kind, Ark role, ref), in Ark's content order."""
        items: list[tuple[str, str, MediaRef]] = []
        if self.first_frame is not None:
            items.append(("image", "first_frame", self.first_frame))
        if self.last_frame is not None:
            items.append(("image", "last_frame", self.last_frame))
        items += [("image", "reference_image", ref) for ref in self.images]
        items += [("video", "reference_video", ref) for ref in self.videos]
        items += [("audio", "reference_audio", ref) for ref in self.audios]
        return items

    @property
    def with_video_input(self) -> bool:
        return bool(self.videos)


def output_tokens(width: int, height: int, duration: int) -> int:
    """§2.1: tokens = W × H × frames / 1024 with frames = 24 × duration + 1 (the example:
    1280×720, 5 s → 108 900)."""
    return math.ceil(width * height * (FPS * duration + 1) / 1024)


def quote_tokens(request: VideoRequest) -> int:
    """The most tokens the request can be billed for: ``adaptive`` takes the largest frame of
    the resolution; the actual figure comes from Ark's usage at settlement."""
    sizes = PIXELS[request.resolution]
    if request.ratio in sizes:
        width, height = sizes[request.ratio]
        return output_tokens(width, height, request.duration)
    return max(output_tokens(w, h, request.duration) for w, h in sizes.values())


def quote_cost(book: PriceBook, request: VideoRequest) -> int:
    return book.cost(
        request.model,
        request.resolution,
        quote_tokens(request),
        with_video=request.with_video_input,
    )


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


# ---- Ark's request -----------------------------------------------------------------------


def ark_content(request: VideoRequest, urls: list[str]) -> list[dict[str, Any]]:
    """§1.4 ``content[]``: the text, then each media item with its role; ``urls`` are the
    items' final URLs (public URL, data URI or ``asset://`` of registered material), in
    :meth:`VideoRequest.media` order."""
    content: list[dict[str, Any]] = []
    if request.prompt:
        content.append({"type": "text", "text": request.prompt})
    for (kind, role, _), url in zip(request.media(), urls, strict=True):
        field = f"{kind}_url"
        content.append({"type": field, field: {"url": url}, "role": role})
    return content


def ark_create_arguments(
    request: VideoRequest, *, urls: list[str], safety_identifier: str, expires_after: int
) -> dict[str, Any]:
    """Keyword arguments of ``tasks.create`` (§1.3); unset options are left out."""
    arguments: dict[str, Any] = {
        "model": request.model,
        "content": ark_content(request, urls),
        "resolution": request.resolution,
        "ratio": request.ratio,
        "duration": request.duration,
        "safety_identifier": safety_identifier,
        "execution_expires_after": expires_after,
    }
    if request.generate_audio is not None:
        arguments["generate_audio"] = request.generate_audio
    if request.watermark is not None:
        arguments["watermark"] = request.watermark
    return arguments


def expiry_base(timeout_seconds: int) -> int:
    """Ark's ``execution_expires_after`` for a run with this time limit, before the
    fingerprint: an hour past the limit, so Ark ends a task wfrun stopped waiting for (a
    running task cannot be cancelled), within Ark's range."""
    return min(259_200, max(timeout_seconds, 3600) + 3600)


def fingerprint_expiry(run_id: str, base: int) -> int:
    """``execution_expires_after`` for a run: ``base`` minus a run-specific 0–3599 s.

    Ark's create takes no idempotency key, and GET/list echo this field; the offset lets a
    retried create recognise its own task among the caller's recent tasks (with the model,
    the per-user ``safety_identifier`` and the creation window) instead of creating a second,
    billable one. The task still expires within the hour before ``base`` (§1.3 range
    [3600, 259200])."""
    offset = int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16) % 3600
    value = base - offset
    return max(3600, min(259_200, value))


# ---- Ark's answers -----------------------------------------------------------------------

ARK_TERMINAL = frozenset({"succeeded", "failed", "expired", "cancelled"})


@dataclass(frozen=True)
class ArkFailure:
    """How an Ark error code maps onto a run failure."""

    engine_code: str
    reason: str
    status: int


def classify_ark_code(code: str, *, during: str = "create") -> ArkFailure:
    """Map an Ark error code (§5) to wfrun's ``engine_code``."""
    if "SensitiveContentDetected.PrivacyInformation" in code:
        return ArkFailure(
            "CONTENT_REAL_PERSON_DETECTED",
            "The provider found a real person in the input media.",
            400,
        )
    if "SensitiveContentDetected" in code:
        output = code.startswith("Output")
        return ArkFailure(
            "CONTENT_SAFETY_REJECTED",
            "The provider's content safety check rejected the "
            + ("output." if output else "input."),
            422 if output else 400,
        )
    if code == "Expired":
        return ArkFailure("ENGINE_TIMEOUT", "The run timed out.", 504)
    if code.startswith(("InvalidParameter", "MissingParameter")):
        return ArkFailure("PROVIDER_REJECTED", "The provider rejected the request.", 400)
    if during == "task":
        return ArkFailure("ENGINE_EXECUTION_FAILED", "The provider's task failed.", 500)
    return ArkFailure(
        "PROVIDER_UNAVAILABLE",
        "The provider refused the request for this account.",
        503,
    )


# ---- revisions of kind ``seedance`` ------------------------------------------------------

NODE_CLASS = "SeedanceVideo"
FIELDS = frozenset(
    {
        "model",
        "prompt",
        "generation_category",
        "first_frame",
        "last_frame",
        "images",
        "videos",
        "audios",
        "resolution",
        "ratio",
        "duration",
        "generate_audio",
        "watermark",
    }
)


def request_node(payload: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The payload's one ``SeedanceVideo`` node: (node id, its literal inputs)."""
    nodes = [(k, v) for k, v in payload.items() if v.get("class_type") == NODE_CLASS]
    if len(nodes) != 1:
        raise ValueError(f"a seedance graph has exactly one {NODE_CLASS} node")
    node_id, node = nodes[0]
    return node_id, node.get("inputs", {})


def payload_problems(payload: Mapping[str, Any]) -> list[str]:
    """Publish-time checks of a ``seedance`` payload."""
    try:
        node_id, inputs = request_node(payload)
    except ValueError as exc:
        return [str(exc)]
    problems = [
        f"node {node_id}: unknown field {name!r} (known: {', '.join(sorted(FIELDS))})"
        for name in inputs
        if name not in FIELDS
    ]
    model = inputs.get("model")
    if model is not None and model not in MODELS:
        problems.append(f"node {node_id}: model {model!r} is not a known Seedance model")
    return problems


def bind_request(
    payload: Mapping[str, Any],
    bindings: Mapping[str, str],
    values: Mapping[str, Any],
    *,
    real_person: bool,
) -> VideoRequest:
    """The request a run makes: the node's literal inputs, overridden by the manifest inputs
    bound to its fields (``bindings``: input key → field).

    Raises:
        InvalidWorkflowInput: the combined request breaks a Seedance rule.
    """
    _, literals = request_node(payload)
    fields: dict[str, Any] = dict(literals)
    for key, name in bindings.items():
        if values.get(key) is not None:
            fields[name] = values[key]
    fields["contains_real_person_material"] = real_person
    return parse_video_request(fields)
