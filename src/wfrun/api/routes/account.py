"""GET /balance/info."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from wfrun.api import wire
from wfrun.api.contract.catalog import BalanceData, BillPage, RechargePage
from wfrun.api.contract.envelope import documented
from wfrun.api.deps import Page, PageSize, PrincipalDep, RuntimeDep
from wfrun.services import billing

router = APIRouter(tags=["billing"])


@router.get("/balance/info", summary="The caller's balance", **documented(BalanceData))
async def balance_info(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    account = await billing.balance(runtime.db, principal.account_id)
    return wire.ok(wire.balance(account))


@router.get(
    "/bill/list",
    summary="Charges: one bill per settled run (chenyu numbers in yuan)",
    **documented(BillPage),
)
async def bill_list(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    page: Page = 1,
    page_size: PageSize = 20,
    charge_channel: int | None = Query(None, ge=1, le=2, description="1 balance, 2 card"),
    order_number: str | None = Query(None, max_length=64),
) -> dict[str, Any]:
    if charge_channel == 2:  # wfrun has no compute cards: nothing was charged to one
        return wire.ok({"order_list": [], "total": 0})
    rows, total = await billing.bills(
        runtime.db, principal.account_id, order_number=order_number, page=page, size=page_size
    )
    return wire.ok({"order_list": wire.items(rows, wire.bill), "total": total})


@router.get("/recharge/list", summary="Top-ups of the caller's balance", **documented(RechargePage))
async def recharge_list(
    runtime: RuntimeDep, principal: PrincipalDep, page: Page = 1, page_size: PageSize = 20
) -> dict[str, Any]:
    rows, total = await billing.recharges(
        runtime.db, principal.account_id, page=page, size=page_size
    )
    return wire.ok({"order_list": wire.items(rows, wire.recharge), "total": total})
