"""Media input values: every spelling the contract accepts, parsed into one shape (pure).

Accepted (open-api-v2.md §3): ``http(s)://…``, ``asset://asset_…``, ``data:<mime>;base64,…``,
``{"uri", "role"?, "label"?}`` and ``{"source_type": "url", "url", "role"?}``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

ASSET_ID = re.compile(r"^asset_[0-9a-f]{32}$")
_DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]+)*),(?P<data>.*)$", re.DOTALL
)

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"\x1a\x45\xdf\xa3", 0, "video/webm"),
    (b"ID3", 0, "audio/mpeg"),
    (b"OggS", 0, "audio/ogg"),
    (b"fLaC", 0, "audio/flac"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
)
_RIFF = {b"WAVE": "audio/wav", b"WEBP": "image/webp", b"AVI ": "video/x-msvideo"}
_FTYP = {
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"qt  ": "video/quicktime",
    b"avif": "image/avif",
    b"heic": "image/heic",
}


class MediaSource(StrEnum):
    URL = "url"
    ASSET = "asset"
    DATA = "data"


@dataclass(frozen=True)
class MediaRef:
    """One parsed media value; ``data`` is set for data URIs only."""

    source: MediaSource
    uri: str
    role: str | None = None
    label: str | None = None
    mime_type: str | None = None
    data: bytes | None = None


class MediaValueError(ValueError):
    """The value is not a media reference; the message says why."""


def sniff_mime(data: bytes) -> str | None:
    """The MIME type the bytes' signature shows, or None when unknown."""
    if data[:4] == b"RIFF":
        return _RIFF.get(data[8:12])
    if data[4:8] == b"ftyp":
        return _FTYP.get(data[8:12], "video/mp4")
    if len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and data[1] != 0xFF:
        return "audio/mpeg"  # an MPEG audio frame header without an ID3 tag
    for magic, offset, mime in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return mime
    return None


def media_kind(mime: str) -> str:
    """``image``/``video``/``audio``/``file`` for a MIME type."""
    major = mime.split("/", 1)[0]
    return major if major in {"image", "video", "audio"} else "file"


def parse_media_value(value: Any) -> MediaRef:
    """Parse one media value in any accepted spelling.

    Raises:
        MediaValueError: not a URL, asset URI, data URI or media object.
    """
    if isinstance(value, dict):
        return _parse_object(value)
    if not isinstance(value, str):
        raise MediaValueError("must be a URL, asset:// URI, data: URI or {uri, role} object")
    return _parse_uri(value.strip())


def _parse_object(value: dict[str, Any]) -> MediaRef:
    if value.get("source_type", "url") != "url":
        raise MediaValueError(f"source_type {value.get('source_type')!r} is not supported")
    uri = value.get("uri", value.get("url"))
    if not isinstance(uri, str):
        raise MediaValueError("object must carry a string 'uri' (or 'url')")
    ref = _parse_uri(uri.strip())
    role, label = value.get("role"), value.get("label")
    if role is not None and not isinstance(role, str):
        raise MediaValueError("'role' must be a string")
    if label is not None and not isinstance(label, str):
        raise MediaValueError("'label' must be a string")
    return MediaRef(ref.source, ref.uri, role, label, ref.mime_type, ref.data)


def _parse_uri(uri: str) -> MediaRef:
    lowered = uri.lower()
    if lowered.startswith(("http://", "https://")):
        if len(uri) > 4096 or " " in uri:
            raise MediaValueError("is not a valid http(s) URL")
        return MediaRef(MediaSource.URL, uri)
    if lowered.startswith("asset://"):
        asset_id = uri[len("asset://") :]
        if not ASSET_ID.match(asset_id):
            raise MediaValueError(f"{uri!r} is not an asset://asset_<32 hex> URI")
        return MediaRef(MediaSource.ASSET, uri)
    if lowered.startswith("data:"):
        return _parse_data_uri(uri)
    raise MediaValueError("must be an http(s) URL, asset:// URI or data: URI")


def _parse_data_uri(uri: str) -> MediaRef:
    match = _DATA_URI.match(uri)
    if match is None or not match.group("mime"):
        raise MediaValueError("data URI must look like data:<mime>;base64,<data>")
    if ";base64" not in match.group("params").lower():
        raise MediaValueError("data URI must be base64-encoded (data:<mime>;base64,…)")
    try:
        data = base64.b64decode(match.group("data"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaValueError("data URI payload is not valid base64") from exc
    if not data:
        raise MediaValueError("data URI payload is empty")
    mime = match.group("mime").lower()
    return MediaRef(MediaSource.DATA, uri[:64], mime_type=mime, data=data)


MEDIA_TYPES = ("image", "video", "audio", "file")


def classify_upload(declared: str | None, filename: str, head: bytes) -> tuple[str, str]:
    """Decide an upload's (media_type, mime_type) from its first bytes, never from the client.

    Raises:
        MediaValueError: the declared type, or the file name's extension, disagrees with the
            bytes, or an image/video/audio upload is not a recognised format.
    """
    sniffed = sniff_mime(head)
    if declared is not None and declared not in MEDIA_TYPES:
        raise MediaValueError(f"media_type must be one of {', '.join(MEDIA_TYPES)}")
    media_type = declared or (media_kind(sniffed) if sniffed else "file")
    if media_type != "file":
        if sniffed is None:
            raise MediaValueError(f"the bytes are not a recognised {media_type} format")
        if media_kind(sniffed) != media_type:
            raise MediaValueError(f"media_type is {media_type} but the bytes are {sniffed}")
    _check_extension(filename, sniffed)
    return media_type, sniffed or "application/octet-stream"


_EXTENSION_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "pdf": "application/pdf",
}


def _check_extension(filename: str, sniffed: str | None) -> None:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    claimed = _EXTENSION_MIME.get(extension)
    if claimed is not None and claimed != sniffed:
        raise MediaValueError(
            f"the file name {filename!r} says {claimed} but the bytes are "
            f"{sniffed or 'not a recognised format'}"
        )
