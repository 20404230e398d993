"""Provider callbacks: Ark POSTs a task's status here when it changes (seedance-ark.md §1.3).

The URL carries wfrun's own signature; see :mod:`wfrun.services.ark_callbacks`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from wfrun.api import wire
from wfrun.api.contract.envelope import documented
from wfrun.api.contract.model_runs import CallbackData
from wfrun.api.deps import RuntimeDep
from wfrun.services.ark_callbacks import CALLBACK_PATH, accept_callback

router = APIRouter(tags=["provider callbacks"])


@router.post(
    CALLBACK_PATH + "/{run_id}",
    summary="Ark task status callback (signed URL)",
    **documented(CallbackData, 403, 404, 503),
)
async def ark_callback(
    run_id: str,
    runtime: RuntimeDep,
    expires: int = Query(ge=0),
    signature: str = Query(min_length=64, max_length=64),
) -> dict[str, Any]:
    await accept_callback(runtime.db, runtime.signer, run_id, expires=expires, signature=signature)
    runtime.wakeup.set()
    return wire.ok({"run_id": run_id}, "操作成功")
