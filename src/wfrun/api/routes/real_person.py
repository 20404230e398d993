"""Real-person verification for Seedance material (wfrun addition; seedance-ark.md §4.3)."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from wfrun.api import wire
from wfrun.api.contract.envelope import documented
from wfrun.api.contract.model_runs import VerificationData
from wfrun.api.deps import PrincipalDep, RuntimeDep, api_base
from wfrun.clock import to_rfc3339
from wfrun.db.real_person import Verification
from wfrun.services import real_person

router = APIRouter(prefix="/real-person", tags=["real-person verification"])


def _data(verification: Verification) -> dict[str, Any]:
    return {
        "verification_id": verification.id,
        "status": verification.status,
        "h5_link": verification.h5_link if verification.status == "pending" else None,
        "group_id": verification.group_id,
        "error": verification.error,
        "created_at": to_rfc3339(verification.created_at),
        "completed_at": to_rfc3339(verification.completed_at),
    }


@router.post(
    "/verifications",
    summary="Start a liveness verification of the person whose material you will use",
    **documented(VerificationData, 503),
)
async def start(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    registry = runtime.seedance.materials if runtime.seedance else None
    verification = await real_person.start(
        runtime.db, registry, principal, api_base=api_base(request, runtime)
    )
    return wire.ok(_data(verification), "提交成功")


@router.get(
    "/verifications/{verification_id}",
    summary="One verification's state",
    **documented(VerificationData, 404),
)
async def show(verification_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> Any:
    return wire.ok(_data(await real_person.get(runtime.db, principal, verification_id)))


@router.get(
    "/verifications/{verification_id}/callback",
    summary="Where Ark sends the person's browser after the liveness check",
    response_class=HTMLResponse,
    **documented(None, 404, 503),
)
async def callback(
    verification_id: str,
    runtime: RuntimeDep,
    byted_token: str = Query(alias="bytedToken", min_length=1, max_length=128),
    result_code: int = Query(alias="resultCode"),
) -> HTMLResponse:
    registry = runtime.seedance.materials if runtime.seedance else None
    verification = await real_person.complete(
        runtime.db, registry, verification_id, byted_token=byted_token, result_code=result_code
    )
    verified = verification.status == "verified"
    text = (
        "核验完成 / Verification complete. You can close this page."
        if verified
        else f"核验未通过 / Verification failed ({escape(verification.error or verification.status)})."
    )
    return HTMLResponse(f"<!doctype html><meta charset=utf-8><p>{text}</p>")
