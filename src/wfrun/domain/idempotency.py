"""Request fingerprints: the same request under the same key replays; another one is 422."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint(request: dict[str, Any]) -> str:
    """SHA-256 of the request's canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
