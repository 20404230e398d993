"""Tiny media files the Ark stand-in serves as task outputs.

seedance-ark.md §1.3: "Output is mp4 at 24 fps"; §1.6: ``content.video_url`` is an mp4 and
``content.last_frame_url`` a PNG "same size as the video". The MP4 is hand-assembled from ISO
BMFF boxes (ISO/IEC 14496-12): ``ftyp`` + ``moov{mvhd, trak{tkhd}}`` + an empty ``mdat``. It
carries the duration (``mvhd``) and the pixel size (``tkhd``) so tests can check them, but it
has no media samples and is not playable. The PNG is a valid all-black RGB image.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def build_mp4(width: int, height: int, duration_ms: int) -> bytes:
    """A minimal ISO BMFF file: ``ftyp`` (isom), ``moov`` with ``mvhd``/``tkhd``, ``mdat``."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    mvhd = _box(
        b"mvhd",
        struct.pack(">I", 0)  # version 0, flags 0
        + struct.pack(">IIII", 0, 0, 1000, duration_ms)  # ctime, mtime, timescale, duration
        + struct.pack(">IH", 0x00010000, 0x0100)  # rate 1.0, volume 1.0
        + b"\x00" * 10
        + _MATRIX
        + b"\x00" * 24
        + struct.pack(">I", 2),  # next_track_ID
    )
    tkhd = _box(
        b"tkhd",
        struct.pack(">I", 0x00000003)  # version 0, flags enabled|in_movie
        + struct.pack(">IIII", 0, 0, 1, 0)  # ctime, mtime, track_ID, reserved
        + struct.pack(">I", duration_ms)
        + b"\x00" * 8
        + struct.pack(">hhhH", 0, 0, 0, 0)  # layer, alternate_group, volume, reserved
        + _MATRIX
        + struct.pack(">II", width << 16, height << 16),
    )
    moov = _box(b"moov", mvhd + _box(b"trak", tkhd))
    return ftyp + moov + _box(b"mdat", b"")


@dataclass(frozen=True)
class Mp4Summary:
    major_brand: str
    duration_ms: int
    width: int
    height: int


def _boxes(data: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8:
            raise ValueError("bad box size")
        out[kind] = data[pos + 8 : pos + size]
        pos += size
    return out


def read_mp4(data: bytes) -> Mp4Summary:
    """Parses what :func:`build_mp4` writes; raises ``ValueError`` if it is not an MP4."""
    if data[4:8] != b"ftyp":
        raise ValueError("not an ISO BMFF file: first box is not ftyp")
    top = _boxes(data)
    moov = _boxes(top[b"moov"])
    duration_ms = struct.unpack(">I", moov[b"mvhd"][16:20])[0]
    tkhd = _boxes(moov[b"trak"])[b"tkhd"]
    width, height = struct.unpack(">II", tkhd[76:84])
    return Mp4Summary(top[b"ftyp"][:4].decode(), duration_ms, width >> 16, height >> 16)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def build_png(width: int, height: int) -> bytes:
    """An all-black 8-bit RGB PNG of the given size."""
    raw = (b"\x00" + b"\x00" * (3 * width)) * height
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height
