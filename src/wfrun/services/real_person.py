"""Real-person verification per account (seedance-ark.md §4.3, the H5 route).

Ark registers real-person material only into a ``LivenessFace`` group whose person passed
liveness verification and authorised the operator's account, and checks every upload's face
against that person. So an account that sells real-person videos first verifies its person:
wfrun opens a ``CreateVisualValidateSession``, the person opens the returned H5 link on a phone,
Ark redirects their browser back to wfrun, and wfrun reads the group with
``GetVisualValidateResult``. Later real-person runs of the account register into that group.
"""

from __future__ import annotations

import secrets
from typing import Any

from wfrun.clock import utcnow
from wfrun.db import real_person as real_person_db
from wfrun.db.database import Connection, Database
from wfrun.db.real_person import Verification
from wfrun.engines.seedance.materials import MaterialError, MaterialRegistry
from wfrun.errors import RealPersonUnavailable, VerificationNotFound
from wfrun.services.accounts import Principal

SUCCESS = 10000  # §4.3: resultCode=10000 means success


def new_verification_id() -> str:
    return f"rpv_{secrets.token_hex(10)}"


def callback_path(verification_id: str) -> str:
    return f"/real-person/verifications/{verification_id}/callback"


async def start(
    db: Database, registry: MaterialRegistry | None, principal: Principal, *, api_base: str
) -> Verification:
    """Open an H5 liveness session for the account's person; returns the verification."""
    if registry is None:
        raise RealPersonUnavailable(
            "real-person verification needs the asset control plane (seedance.access_key_id "
            "and seedance.secret_access_key)"
        )
    verification_id = new_verification_id()
    callback = api_base + callback_path(verification_id)
    try:
        session = await registry.call("CreateVisualValidateSession", {"CallbackURL": callback})
    except MaterialError as exc:
        raise RealPersonUnavailable(f"Ark refused to open a verification: {exc.message}") from exc
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await real_person_db.insert_verification(
            conn,
            {
                "id": verification_id,
                "account_id": principal.account_id,
                "status": "pending",
                "byted_token": str(session["BytedToken"]),
                "h5_link": str(session["H5Link"]),
                "created_at": now,
            },
        )
        return await _find(conn, verification_id)


async def complete(
    db: Database,
    registry: MaterialRegistry | None,
    verification_id: str,
    *,
    byted_token: str,
    result_code: int,
) -> Verification:
    """Ark's redirect after the person's liveness check: read the verified group (once)."""
    async with db.transaction() as conn:
        found = await _find(conn, verification_id)
    if found.status != "pending" or found.byted_token != byted_token:
        return found  # already completed (the token is single-use), or not this session's
    if result_code != SUCCESS:
        return await _finish(db, found, status="failed", error=f"resultCode={result_code}")
    if registry is None:
        raise RealPersonUnavailable("the asset control plane is not configured")
    try:
        result: dict[str, Any] = await registry.call(
            "GetVisualValidateResult", {"BytedToken": byted_token}
        )
    except MaterialError as exc:  # §4.3: "not finished" can be asked again: stay pending
        raise RealPersonUnavailable(
            f"Ark could not confirm the verification yet ({exc.message}); reload this page "
            "in a moment"
        ) from exc
    return await _finish(db, found, status="verified", group_id=str(result["GroupId"]))


async def get(db: Database, principal: Principal, verification_id: str) -> Verification:
    async with db.transaction() as conn:
        found = await _find(conn, verification_id)
    if found.account_id != principal.account_id:
        raise VerificationNotFound(f"verification {verification_id} does not exist")
    return found


async def group_for(conn: Connection, account_id: str) -> str | None:
    """The account's most recently verified person group, if any."""
    return await real_person_db.latest_group(conn, account_id)


async def _find(conn: Connection, verification_id: str) -> Verification:
    found = await real_person_db.find_verification(conn, verification_id)
    if found is None:
        raise VerificationNotFound(f"verification {verification_id} does not exist")
    return found


async def _finish(db: Database, verification: Verification, **values: Any) -> Verification:
    async with db.transaction(write=True) as conn:
        await real_person_db.complete_pending(
            conn, verification.id, {"completed_at": utcnow(), **values}
        )
        return await _find(conn, verification.id)
