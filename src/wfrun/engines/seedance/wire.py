"""What Volcengine Ark's content-generation API looks like (seedance-ark.md): the body of a
create (``content[]`` items and their roles, ``execution_expires_after``), task status names
and error codes, and how those map onto wfrun's run failures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from wfrun.domain.failures import FailureCode
from wfrun.domain.media import MediaRef
from wfrun.domain.seedance import VideoRequest
from wfrun.errors import Category

# ---- Ark's request ------------------------------------------------------------------------


def ark_media(request: VideoRequest) -> list[tuple[str, str, MediaRef]]:
    """Every media item as (kind, Ark role, ref), in Ark's content order (§1.4)."""
    items: list[tuple[str, str, MediaRef]] = []
    if request.first_frame is not None:
        items.append(("image", "first_frame", request.first_frame))
    if request.last_frame is not None:
        items.append(("image", "last_frame", request.last_frame))
    items += [("image", "reference_image", ref) for ref in request.images]
    items += [("video", "reference_video", ref) for ref in request.videos]
    items += [("audio", "reference_audio", ref) for ref in request.audios]
    return items


def ark_content(request: VideoRequest, urls: list[str]) -> list[dict[str, Any]]:
    """§1.4 ``content[]``: the text, then each media item with its role; ``urls`` are the
    items' final URLs (public URL, data URI or ``asset://`` of registered material), in
    :func:`ark_media` order."""
    content: list[dict[str, Any]] = []
    if request.prompt:
        content.append({"type": "text", "text": request.prompt})
    for (kind, role, _), url in zip(ark_media(request), urls, strict=True):
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
    """How an Ark error code maps onto a run failure: a catalogue code, and where Ark says
    more precisely than the code's defaults, the reason and category."""

    code: FailureCode
    reason: str | None = None
    category: Category | None = None


def classify_ark_code(code: str, *, during: str = "create") -> ArkFailure:
    """Map an Ark error code (§5) to wfrun's failure catalogue."""
    if "SensitiveContentDetected.PrivacyInformation" in code:
        return ArkFailure(FailureCode.CONTENT_REAL_PERSON_DETECTED)
    if "SensitiveContentDetected" in code:
        if code.startswith("Output"):  # the generated video was refused, not the request
            return ArkFailure(
                FailureCode.CONTENT_SAFETY_REJECTED,
                "The provider's content safety check rejected the output.",
                Category.UNPROCESSABLE,
            )
        return ArkFailure(FailureCode.CONTENT_SAFETY_REJECTED)
    if code == "Expired":
        return ArkFailure(FailureCode.ENGINE_TIMEOUT)
    if code.startswith(("InvalidParameter", "MissingParameter")):
        return ArkFailure(FailureCode.PROVIDER_REJECTED)
    if during == "task":
        return ArkFailure(FailureCode.ENGINE_EXECUTION_FAILED, "The provider's task failed.")
    return ArkFailure(FailureCode.PROVIDER_UNAVAILABLE)
