"""How an engine's permanent failure reads on the wire (``engine_code``, reason, status)."""

from __future__ import annotations

from wfrun.engines.base import EnginePermanent
from wfrun.services.execution import Failure

_FAILURES: dict[str, tuple[str, int]] = {
    "ENGINE_VALIDATION_FAILED": ("The workflow graph failed validation.", 500),
    "ENGINE_EXECUTION_FAILED": ("A workflow node failed.", 500),
    "ENGINE_TIMEOUT": ("The run timed out.", 504),
    "ENGINE_OUTPUT_MISSING": ("The workflow did not produce a promised output.", 500),
    "MEDIA_URL_FORBIDDEN": ("A media URL was refused.", 400),
    "MEDIA_FETCH_FAILED": ("A media URL could not be fetched.", 400),
    "MEDIA_TOO_LARGE": ("A media file is too large.", 413),
    "INPUT_ASSET_GONE": ("An input asset is no longer available.", 400),
}


def engine_failure(exc: EnginePermanent) -> Failure:
    reason, status = _FAILURES.get(exc.code, ("The engine failed.", 500))
    return Failure(
        exc.code,
        exc.reason or reason,
        exc.message,
        node_id=exc.node_id,
        status=exc.status or status,
    )
