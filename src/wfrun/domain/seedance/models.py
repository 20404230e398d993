"""What the Seedance models on Volcengine Ark accept: ratios, output sizes, resolutions,
durations and modes (seedance-ark.md §1.2–§1.4)."""

from __future__ import annotations

from dataclasses import dataclass

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
