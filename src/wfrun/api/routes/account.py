"""GET /balance/info."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from wfrun.api import wire
from wfrun.api.deps import PrincipalDep, RuntimeDep
from wfrun.services import billing

router = APIRouter(tags=["billing"])


@router.get("/balance/info", summary="The caller's balance")
async def balance_info(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    account = await billing.balance(runtime.db, principal.account_id)
    return wire.ok(wire.balance(account))
