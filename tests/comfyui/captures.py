"""The recorded ComfyUI 0.3.64 captures (``shared/comfyui/captures`` beside the repository)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

CAPTURES = Path(__file__).parents[3] / "shared" / "comfyui" / "captures"


@cache
def load(name: str) -> dict[str, Any]:
    """One capture file (``core``, ``queue``, ``extra``, ``dupe``, ``stall``)."""
    path = CAPTURES / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the shared captures must sit beside the repository")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def frames(entries: list[Any]) -> list[str | bytes]:
    """Recorded ``[t, "text"|"binary", payload]`` entries as wire frames (binary: header only)."""
    result: list[str | bytes] = []
    for _, kind, payload in entries:
        if kind == "binary":
            result.append(bytes.fromhex(payload["head_hex"]))
        else:
            result.append(json.dumps(payload))
    return result


def types(entries: list[Any]) -> list[str]:
    """Message types of recorded text frames."""
    return [payload["type"] for _, kind, payload in entries if kind == "text"]
