"""Validation rules of the Ark content-generation create call, as seedance-ark.md states them.

Pure functions: :func:`validate_create` turns a request body into a :class:`TaskSpec` or raises
:class:`ArkError`. Section numbers (§) refer to /work/shared/reference/seedance-ark.md. Where
the reference is silent the rule says "silent:" and picks the conservative (stricter) choice.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# §1.3: "Output is mp4 at 24 fps".
FPS = 24

# §5: HTTP error body {"error": {"code", "message", "param", "type"}}. silent: the values of
# ``type`` are not documented; the stand-in uses one word per HTTP status.
_ERROR_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
}


class ArkError(Exception):
    """A data-plane error response (§5.1)."""

    def __init__(self, status: int, code: str, message: str, param: str = "") -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.param = param

    def body(self, request_id: str) -> dict[str, Any]:
        # §5: "message": "... Request ID: ..."
        return {
            "error": {
                "code": self.code,
                "message": f"{self.message} Request ID: {request_id}",
                "param": self.param,
                "type": _ERROR_TYPES.get(self.status, "Error"),
            }
        }


def bad(code: str, message: str, param: str = "") -> ArkError:
    return ArkError(400, code, message, param)


@dataclass(frozen=True)
class ModelSpec:
    """What §1.2/§1.3/§1.4 say one Model ID supports."""

    model_id: str
    series: str  # "2.0", "1.5pro", "1.0pro"
    resolutions: tuple[str, ...]
    default_resolution: str
    durations: tuple[int, int]
    auto_duration: bool  # duration -1 allowed
    first_last: bool  # first+last frame mode
    frames: bool  # `frames` field supported
    seed: bool
    camera_fixed: bool

    @property
    def is_2_0(self) -> bool:
        return self.series == "2.0"


_ALL_RES = ("480p", "720p", "1080p")
MODELS: dict[str, ModelSpec] = {
    m.model_id: m
    for m in (
        # §1.2 / §1.3: 2.0 has 480p/720p/1080p/4k, 4-15 s or -1; no seed, camera_fixed, frames.
        ModelSpec(
            "doubao-seedance-2-0-260128",
            "2.0",
            (*_ALL_RES, "4k"),
            "720p",
            (4, 15),
            True,
            True,
            False,
            False,
            False,
        ),
        # §1.2: Fast and Mini: "480p/720p only"; §1.3 "1080p (not on 2.0 Fast or Mini)".
        ModelSpec(
            "doubao-seedance-2-0-fast-260128",
            "2.0",
            ("480p", "720p"),
            "720p",
            (4, 15),
            True,
            True,
            False,
            False,
            False,
        ),
        ModelSpec(
            "doubao-seedance-2-0-mini-260615",
            "2.0",
            ("480p", "720p"),
            "720p",
            (4, 15),
            True,
            True,
            False,
            False,
            False,
        ),
        # §1.3: 1.5 Pro [4,12] or -1; frames "not supported by 2.0 or 1.5 Pro". silent: 4k is
        # "2.0 only", so 1.5 Pro gets 480p/720p/1080p.
        ModelSpec(
            "doubao-seedance-1-5-pro-251215",
            "1.5pro",
            _ALL_RES,
            "720p",
            (4, 12),
            True,
            True,
            False,
            True,
            True,
        ),
        # §1.2 / §1.3: 1.0 Pro 2-12 s, 1080p default, first+last frame supported.
        ModelSpec(
            "doubao-seedance-1-0-pro-250528",
            "1.0pro",
            _ALL_RES,
            "1080p",
            (2, 12),
            False,
            True,
            True,
            True,
            True,
        ),
        # §1.2: 1.0 Pro Fast: "first-frame and text-to-video only".
        ModelSpec(
            "doubao-seedance-1-0-pro-fast-251015",
            "1.0pro",
            _ALL_RES,
            "1080p",
            (2, 12),
            False,
            False,
            True,
            True,
            True,
        ),
    )
}
# Not modelled (silent or third-party only): 1.0 Lite t2v/i2v and Seedance 2.5 → 404.

# §1.3 pixel table for 2.0 and 1.5 Pro.
_SIZES: dict[str, dict[str, tuple[int, int]]] = {
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
    "4k": {
        "16:9": (3840, 2160),
        "4:3": (3326, 2494),
        "1:1": (2880, 2880),
        "3:4": (2494, 3326),
        "9:16": (2160, 3840),
        "21:9": (4398, 1886),
    },
}
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive")


def pixel_size(model: ModelSpec, resolution: str, ratio: str) -> tuple[int, int]:
    # §1.3: "The 1.0 series uses slightly different sizes, e.g. 720p 16:9 is 1248×704".
    # silent: only that one 1.0 size is given; the others fall back to the 2.0 table.
    if model.series == "1.0pro" and (resolution, ratio) == ("720p", "16:9"):
        return 1248, 704
    return _SIZES[resolution][ratio]


def completion_tokens(width: int, height: int, frames: int) -> int:
    """§2.1: tokens ≈ W×H×fps×duration/1024; the API's 108 900 for 1280×720×5 s is 121 frames
    (24×5+1). silent: rounding for sizes not divisible by 1024 → round up."""
    return math.ceil(width * height * frames / 1024)


def frame_count(duration: int | None, frames: int | None) -> int:
    if frames is not None:
        return frames
    assert duration is not None
    return FPS * duration + 1


# ---------------------------------------------------------------------------------------------
# create body


@dataclass
class MediaRef:
    index: int  # position in content[]
    kind: str  # "image" | "video" | "audio"
    url: str
    role: str | None

    @property
    def asset_id(self) -> str | None:
        return self.url.removeprefix("asset://") if self.url.startswith("asset://") else None

    @property
    def param(self) -> str:
        return f"content[{self.index}]"


@dataclass
class TaskSpec:
    """A validated create request."""

    model: ModelSpec
    requested_model: str  # Model ID or Endpoint ID as sent
    prompt: str | None
    media: list[MediaRef]
    draft_task_id: str | None
    resolution: str
    ratio: str
    duration: int | None
    frames: int | None
    seed: int | None
    camera_fixed: bool | None
    watermark: bool
    generate_audio: bool | None
    draft: bool | None
    return_last_frame: bool
    service_tier: str
    execution_expires_after: int
    priority: int | None
    callback_url: str | None
    safety_identifier: str | None
    tools: list[dict[str, str]] | None
    auto_duration: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


# §1.3: exactly these top-level fields ("The tasks.create signature in the SDK has exactly these
# keyword arguments"). silent: unknown top-level fields → rejected (stricter than "ignored").
_TOP_FIELDS = {
    "model",
    "content",
    "callback_url",
    "return_last_frame",
    "service_tier",
    "execution_expires_after",
    "generate_audio",
    "draft",
    "tools",
    "safety_identifier",
    "priority",
    "resolution",
    "ratio",
    "duration",
    "frames",
    "seed",
    "camera_fixed",
    "watermark",
}


def _typed(body: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    # bool is an int subclass; an int field must not take true/false
    wrong_bool = kind is int and isinstance(value, bool)
    if not isinstance(value, kind) or wrong_bool:
        raise bad(f"InvalidParameter.{name}", f"The parameter `{name}` has a wrong type.", name)
    return value


def _unsupported(name: str, model: ModelSpec) -> ArkError:
    return bad(
        "InvalidParameter.UnsupportedParameter",
        f"The parameter `{name}` is not supported by model {model.model_id}.",
        name,
    )


def _content_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    content = body.get("content")
    if content is None:
        raise bad("MissingParameter.content", "The parameter `content` is required.", "content")
    if not isinstance(content, list) or not content:
        raise bad("InvalidParameter.content", "`content` must be a non-empty array.", "content")
    for i, item in enumerate(content):
        if not isinstance(item, dict):
            raise bad("InvalidParameter.content", "content items must be objects.", f"content[{i}]")
    return content


_DATA_IMAGE = re.compile(r"^data:image/[a-z0-9.+-]+;base64,")
_DATA_AUDIO = re.compile(r"^data:audio/[a-z0-9.+-]+;base64,")


def _url_ok(kind: str, url: str) -> bool:
    # §1.4 url forms: image URL|data:image/<fmt lower>;base64|asset://; video URL|asset:// (no
    # base64); audio URL|data:audio/<fmt>;base64|asset://.
    if url.startswith(("http://", "https://")) or re.fullmatch(r"asset://[\w.-]+", url):
        return True
    if kind == "image":
        return bool(_DATA_IMAGE.match(url))
    if kind == "audio":
        return bool(_DATA_AUDIO.match(url))
    return False


# §1.4 allowed roles per type. silent: video/audio role omitted → rejected ("reference_video only").
_ROLES: dict[str, tuple[str | None, ...]] = {
    "image": ("first_frame", "last_frame", "reference_image", None),
    "video": ("reference_video",),
    "audio": ("reference_audio",),
}


def _media_item(i: int, item: dict[str, Any]) -> MediaRef:
    kind = str(item["type"]).removesuffix("_url")
    inner = item.get(item["type"])
    url = inner.get("url") if isinstance(inner, dict) else None
    if not isinstance(url, str) or not url:
        raise bad(
            f"MissingParameter.content[{i}].{item['type']}.url",
            f"content[{i}] needs {item['type']}.url.",
            f"content[{i}]",
        )
    if not _url_ok(kind, url):
        raise bad(
            "InvalidParameter",
            f"The {kind} url of content[{i}] is not an accepted form.",
            f"content[{i}]",
        )
    role = item.get("role")
    if role not in _ROLES[kind]:
        raise bad("InvalidParameter", f"role {role!r} is not valid for {kind}.", f"content[{i}]")
    return MediaRef(i, kind, url, role)


def _split_content(
    items: list[dict[str, Any]],
) -> tuple[list[str], list[MediaRef], list[str]]:
    texts: list[str] = []
    media: list[MediaRef] = []
    drafts: list[str] = []
    for i, item in enumerate(items):
        kind = item.get("type")
        if kind == "text":
            text = item.get("text")
            if not isinstance(text, str):
                raise bad("InvalidParameter", "text item needs `text`.", f"content[{i}]")
            texts.append(text)
        elif kind in ("image_url", "video_url", "audio_url"):
            media.append(_media_item(i, item))
        elif kind == "draft_task":
            inner = item.get("draft_task")
            draft_id = inner.get("id") if isinstance(inner, dict) else None
            if not isinstance(draft_id, str):
                raise bad("InvalidParameter", "draft_task needs `id`.", f"content[{i}]")
            drafts.append(draft_id)
        else:
            raise bad("InvalidParameter", f"unknown content type {kind!r}.", f"content[{i}]")
    return texts, media, drafts


def _check_mode(model: ModelSpec, media: list[MediaRef]) -> str:
    """§1.4 modes: text-only, first-frame, first+last, multimodal reference (mutually exclusive)."""
    images = [m for m in media if m.kind == "image"]
    videos = [m for m in media if m.kind == "video"]
    audios = [m for m in media if m.kind == "audio"]
    roles = {m.role for m in images}
    if not media:
        return "t2v"
    if not videos and not audios and roles <= {"first_frame", None} and len(images) == 1:
        return "first_frame"
    if not videos and not audios and len(images) == 2 and roles == {"first_frame", "last_frame"}:
        if not model.first_last:
            raise _unsupported("last_frame", model)
        return "first_last"
    if roles - {"reference_image"}:
        raise bad("InvalidParameter", "The content modes are mutually exclusive.", "content")
    if not model.is_2_0:
        raise bad("InvalidParameter", "Reference media need a Seedance 2.0 model.", "content")
    if len(images) > 9 or len(videos) > 3 or len(audios) > 3:
        raise bad("InvalidParameter", "Too many reference media.", "content")
    if audios and not images and not videos:
        raise bad("InvalidParameter", "Audio needs at least one image or video.", "content")
    return "reference"


# §1.3 text-command suffix: "--rs 720p --rt 16:9 --dur 5 --seed 11 --cf false --wm true".
_SUFFIX = re.compile(r"--(\w+)\s+(\S+)")
_SUFFIX_NAMES = {
    "rs": "resolution",
    "resolution": "resolution",
    "rt": "ratio",
    "ratio": "ratio",
    "dur": "duration",
    "duration": "duration",
    "seed": "seed",
    "cf": "camera_fixed",
    "camerafixed": "camera_fixed",
    "wm": "watermark",
    "watermark": "watermark",
    "fps": "fps",
    "framespersecond": "fps",
}


def _suffix_value(name: str, raw: str) -> Any:
    if name in ("duration", "seed", "fps"):
        return int(raw)
    if name in ("camera_fixed", "watermark"):
        if raw not in ("true", "false"):
            raise ValueError(raw)
        return raw == "true"
    return raw


def apply_text_suffix(prompt: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """§1.3: parameters appended to the prompt still work on all models. silent: precedence over
    the body field → the suffix wins (worst case for a client that bills on the body); bad
    values "are silently ignored or raise an error" → the stand-in raises InvalidParameter."""
    merged = dict(body)
    for flag, raw in _SUFFIX.findall(prompt or ""):
        name = _SUFFIX_NAMES.get(flag)
        if name is None:
            continue
        try:
            value = _suffix_value(name, raw)
        except ValueError:
            raise bad("InvalidParameter", f"bad prompt parameter --{flag} {raw}", "text") from None
        if name == "fps":
            if value != FPS:  # §1.3: --fps "only accepts 24"
                raise bad("InvalidParameter", "--fps only accepts 24", "text")
            continue
        merged[name] = value
    return merged


_ASSET_IN_TEXT = re.compile(r"asset-\d{8,}")


def _check_prompt(texts: list[str]) -> str | None:
    # silent: several text items are not shown in §1.4's combinations ("text?") → rejected.
    if len(texts) > 1:
        raise bad("InvalidParameter", "At most one text item is allowed.", "content")
    prompt = texts[0] if texts else None
    # §1.4 "Never write an asset ID in the prompt" (wrong usage). silent: whether Ark rejects it
    # → the stand-in rejects it.
    if prompt is not None and _ASSET_IN_TEXT.search(prompt):
        raise bad("InvalidParameter", "Do not put asset IDs in the prompt.", "content")
    return prompt


def _duration_frames(
    body: dict[str, Any], model: ModelSpec, auto_duration: int
) -> tuple[int | None, int | None, bool]:
    frames = _typed(body, "frames", int)
    if frames is not None:
        # §1.3 frames: not 2.0 / 1.5 Pro; 25+4n in [29,289]; takes precedence over duration.
        if not model.frames:
            raise _unsupported("frames", model)
        if not (29 <= frames <= 289 and (frames - 25) % 4 == 0):
            raise bad("InvalidParameter.frames", "frames must be 25+4n in [29, 289].", "frames")
        return None, frames, False
    duration = _typed(body, "duration", int, 5)  # §1.3 default 5
    if duration == -1 and model.auto_duration:
        return auto_duration, None, True
    low, high = model.durations
    if not low <= duration <= high:
        raise bad("InvalidParameter.duration", f"duration must be in [{low}, {high}].", "duration")
    return duration, None, False


def _check_series_fields(body: dict[str, Any], model: ModelSpec) -> None:
    # §1.3: 2.0 series "online only, do not send" service_tier; seed and camera_fixed "2.0
    # series: not supported"; generate_audio "2.0 series and 1.5 Pro only"; draft "1.5 Pro
    # only"; tools and priority "2.0 series only".
    rules = {
        "service_tier": not model.is_2_0,
        "seed": model.seed,
        "camera_fixed": model.camera_fixed,
        "generate_audio": model.series in ("2.0", "1.5pro"),
        "draft": model.series == "1.5pro",
        "tools": model.is_2_0,
        "priority": model.is_2_0,
    }
    for name, allowed in rules.items():
        if body.get(name) is not None and not allowed:
            raise _unsupported(name, model)


def _scalars(body: dict[str, Any], model: ModelSpec) -> dict[str, Any]:
    resolution = _typed(body, "resolution", str, model.default_resolution)
    if resolution not in model.resolutions:
        raise bad(
            "InvalidParameter.resolution", f"resolution {resolution} is invalid.", "resolution"
        )
    ratio = _typed(body, "ratio", str, None)
    if ratio is not None and ratio not in RATIOS:
        raise bad("InvalidParameter.ratio", f"ratio {ratio} is invalid.", "ratio")
    tier = _typed(body, "service_tier", str, "default")
    if tier not in ("default", "flex"):
        raise bad("InvalidParameter.service_tier", "service_tier is invalid.", "service_tier")
    expires = _typed(body, "execution_expires_after", int, 172800)
    if not 3600 <= expires <= 259200:
        raise bad(
            "InvalidParameter.execution_expires_after",
            "execution_expires_after must be in [3600, 259200].",
            "execution_expires_after",
        )
    seed = _typed(body, "seed", int)
    if seed is not None and not -1 <= seed <= 2**32 - 1:
        raise bad("InvalidParameter.seed", "seed must be in [-1, 2^32-1].", "seed")
    priority = _typed(body, "priority", int)
    if priority is not None and (not 0 <= priority <= 9 or tier == "flex"):
        raise bad("InvalidParameter.priority", "priority must be 0-9, not with flex.", "priority")
    ident = _typed(body, "safety_identifier", str)
    if ident is not None and len(ident) > 64:
        raise bad(
            "InvalidParameter.safety_identifier", "safety_identifier > 64.", "safety_identifier"
        )
    return {
        "resolution": resolution,
        "ratio": ratio,
        "service_tier": tier,
        "execution_expires_after": expires,
        "seed": seed,
        "priority": priority,
        "safety_identifier": ident,
    }


def _tools(body: dict[str, Any]) -> list[dict[str, str]] | None:
    tools: list[dict[str, str]] | None = _typed(body, "tools", list)
    if tools is not None and any(t != {"type": "web_search"} for t in tools):
        raise bad("InvalidParameter.tools", 'tools only take {"type": "web_search"}.', "tools")
    return tools


def _callback(body: dict[str, Any]) -> str | None:
    url: str | None = _typed(body, "callback_url", str)
    if url is not None and not url.startswith(("http://", "https://")):
        raise bad("InvalidParameter.callback_url", "callback_url must be a URL.", "callback_url")
    return url


def validate_create(body: Any, model: ModelSpec, requested: str, *, auto_duration: int) -> TaskSpec:
    """Validates a create body for ``model`` (already resolved from ``body["model"]``)."""
    assert isinstance(body, dict)
    # Observed (SDK 5.0.54, contrary to §3.2 "Fields left as None are not sent"): the SDK sends
    # every keyword as JSON null, including output_format and omni_reference_task_type, which
    # the reference does not document. null is treated as absent.
    unknown = sorted(k for k, v in body.items() if k not in _TOP_FIELDS and v is not None)
    if unknown:
        raise bad(
            "InvalidParameter.UnsupportedParameter",
            f"Unknown parameter `{unknown[0]}`.",
            unknown[0],
        )
    texts, media, drafts = _split_content(_content_items(body))
    prompt = _check_prompt(texts)
    body = apply_text_suffix(prompt, body)
    mode = _check_mode(model, media)
    if drafts and (model.series != "1.5pro" or media or len(drafts) > 1):
        raise bad("InvalidParameter", "draft_task is 1.5 Pro only, alone.", "content")
    _check_series_fields(body, model)
    if body.get("camera_fixed") is not None and mode == "reference":
        raise bad("InvalidParameter.camera_fixed", "not for reference-image mode.", "camera_fixed")
    scalars = _scalars(body, model)
    duration, frames, auto = _duration_frames(body, model, auto_duration)
    # §1.3 ratio default: 2.0 & 1.5 Pro adaptive; others t2v 16:9, i2v adaptive.
    default_ratio = "16:9" if model.series == "1.0pro" and mode == "t2v" else "adaptive"
    return TaskSpec(
        model=model,
        requested_model=requested,
        prompt=prompt,
        media=media,
        draft_task_id=drafts[0] if drafts else None,
        resolution=scalars["resolution"],
        ratio=scalars["ratio"] or default_ratio,
        duration=duration,
        frames=frames,
        seed=scalars["seed"],
        camera_fixed=_typed(body, "camera_fixed", bool),
        watermark=_typed(body, "watermark", bool, False),
        generate_audio=_typed(body, "generate_audio", bool, True)
        if model.series in ("2.0", "1.5pro")
        else None,
        draft=_typed(body, "draft", bool, False) if model.series == "1.5pro" else None,
        return_last_frame=_typed(body, "return_last_frame", bool, False),
        service_tier=scalars["service_tier"],
        execution_expires_after=scalars["execution_expires_after"],
        priority=scalars["priority"],
        callback_url=_callback(body),
        safety_identifier=scalars["safety_identifier"],
        tools=_tools(body),
        auto_duration=auto,
    )
