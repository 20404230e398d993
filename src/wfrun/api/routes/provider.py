"""Provider callbacks: Ark POSTs a task's status here when it changes (seedance-ark.md §1.3).

Ark does not sign callbacks, so the body is only a hint: the URL carries wfrun's own signature
(it names the run), and a valid call just makes the tracker check that task now.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query

from wfrun.api import wire
from wfrun.api.deps import RuntimeDep
from wfrun.clock import utcnow
from wfrun.queue import broker
from wfrun.workers.seedance import CALLBACK_PATH, callback_key

router = APIRouter(tags=["provider callbacks"])


@router.post(CALLBACK_PATH + "/{run_id}", summary="Ark task status callback (signed URL)")
async def ark_callback(
    run_id: str,
    runtime: RuntimeDep,
    expires: int = Query(ge=0),
    signature: str = Query(min_length=64, max_length=64),
) -> dict[str, Any]:
    runtime.signer.verify(callback_key(run_id), expires, signature, now=int(time.time()))
    async with runtime.db.transaction(write=True) as conn:
        await broker.expedite(conn, run_id, utcnow())
    runtime.wakeup.set()
    return wire.ok({"run_id": run_id}, "操作成功")
