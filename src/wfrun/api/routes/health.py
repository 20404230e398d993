"""The operating endpoints (open-api-v2.md §7 "Operating"), outside the API prefix, without a
key: ``/healthz`` (the process is alive; no database), ``/readyz`` (the database answers, its
schema is current, storage takes a write; 503 naming the failing parts) and ``/metrics``
(Prometheus text; on its own port instead when ``metrics.port`` is set)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from wfrun import __version__
from wfrun.api import errors, wire
from wfrun.api.contract.envelope import documented
from wfrun.api.contract.operating import HealthData, ReadyData
from wfrun.api.deps import RuntimeDep
from wfrun.metrics import CONTENT_TYPE
from wfrun.services import metrics_snapshot, readiness

router = APIRouter(tags=["operating"])
metrics_router = APIRouter(tags=["operating"])
NOT_READY_CODE = "SERVICE_UNAVAILABLE"


@router.get("/healthz", summary="Liveness: the process answers", **documented(HealthData))
async def healthz() -> dict[str, Any]:
    return wire.ok({"version": __version__}, msg="ok")


@router.get(
    "/readyz",
    summary="Readiness: database, migrations and storage",
    **documented(ReadyData, 503),
)
async def readyz(runtime: RuntimeDep) -> Any:
    timeout = runtime.settings.api.ready_timeout_seconds
    found = await readiness.check(runtime.db, runtime.storage, timeout=timeout)
    if not found.ready:
        return _not_ready(found, runtime.settings.api.retry_after_seconds)
    parts = {part.name: {"status": part.state.value, "detail": part.detail} for part in found.parts}
    return wire.ok({"ready": True, **parts}, msg="ready")


def _not_ready(found: readiness.Readiness, retry_after: int) -> JSONResponse:
    names = ", ".join(part.name for part in found.failing)
    detail = "; ".join(f"{part.name} {part.state.value}: {part.detail}" for part in found.failing)
    return errors.envelope(
        503, f"Not ready: {names}.", detail, NOT_READY_CODE, retry_after=retry_after
    )


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics (text format; docs/operating.md lists them)",
    response_model=None,
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(runtime: RuntimeDep) -> Response:
    timeout = runtime.settings.metrics.scrape_timeout_seconds
    body = await metrics_snapshot.scrape(runtime.metrics, runtime.db, timeout=timeout)
    return Response(body, media_type=CONTENT_TYPE)
