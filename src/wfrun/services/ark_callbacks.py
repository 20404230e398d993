"""Ark's task status callbacks (seedance-ark.md §1.3): the signed URL a run's upstream task is
created with, and what a call to it does.

Ark does not sign callbacks, so the body is only a hint: the URL carries wfrun's own signature
(it names the run), and a valid call just makes the tracker check that task now. The worker
builds the URL and the API checks it; both take it from here.
"""

from __future__ import annotations

import time

from wfrun.clock import utcnow
from wfrun.db.database import Database
from wfrun.queue import broker
from wfrun.services.seedance_deps import SeedanceDeps
from wfrun.storage.signing import UrlSigner

CALLBACK_PATH = "/provider/ark/callback"
"""Where the API serves callbacks: ``{CALLBACK_PATH}/{run_id}?expires=…&signature=…``."""


def _signed_key(run_id: str) -> str:
    return f"ark-callback/{run_id}"


def callback_url(deps: SeedanceDeps, run_id: str) -> str | None:
    """The signed URL Ark POSTs this run's task status to, when callbacks are configured."""
    base = deps.settings.callback_base_url
    if not base or deps.signer is None:
        return None
    expires = int(time.time()) + deps.settings.execution_expires_after + 86_400
    signature = deps.signer.signature(_signed_key(run_id), expires)
    return f"{base.rstrip('/')}{CALLBACK_PATH}/{run_id}?expires={expires}&signature={signature}"


async def accept_callback(
    db: Database, signer: UrlSigner, run_id: str, *, expires: int, signature: str
) -> None:
    """A call to a callback URL: check its signature, then make the tracker check the run's
    task now (a run that is not tracked is left alone).

    Raises:
        FileLinkInvalid: the URL was not signed by this server, or has expired.
    """
    signer.verify(_signed_key(run_id), expires, signature, now=int(time.time()))
    async with db.transaction(write=True) as conn:
        await broker.expedite(conn, run_id, utcnow())
