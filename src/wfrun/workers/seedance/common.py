"""What dispatch and tracking of Seedance runs share: their dependencies, the callback URL,
the per-user safety identifier, failure mapping and clean-up of staged media."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from wfrun.config import SeedanceSettings
from wfrun.domain import seedance
from wfrun.domain.failures import FailureCode, failure_code
from wfrun.domain.manifest import validate_inputs
from wfrun.domain.seedance import PriceBook, VideoRequest
from wfrun.engines.base import EnginePermanent
from wfrun.engines.seedance.ark import ArkGateway
from wfrun.engines.seedance.materials import MaterialRegistry
from wfrun.errors import Category
from wfrun.services.claims import Claim
from wfrun.services.runs import video_request
from wfrun.storage.base import ObjectStore
from wfrun.storage.links import Links
from wfrun.storage.signing import UrlSigner
from wfrun.store.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeedanceDeps:
    db: Database
    storage: ObjectStore
    ark: ArkGateway
    links: Links
    prices: PriceBook
    settings: SeedanceSettings
    materials: MaterialRegistry | None = None
    output_retention: timedelta = timedelta(days=7)
    signer: UrlSigner | None = None
    """Signs callback URLs (with ``settings.callback_base_url``)."""


CALLBACK_PATH = "/provider/ark/callback"


def callback_key(run_id: str) -> str:
    return f"ark-callback/{run_id}"


def callback_url(deps: SeedanceDeps, run_id: str) -> str | None:
    """The signed URL Ark POSTs this run's task status to, when callbacks are configured."""
    base = deps.settings.callback_base_url
    if not base or deps.signer is None:
        return None
    expires = int(time.time()) + deps.settings.execution_expires_after + 86_400
    signature = deps.signer.signature(callback_key(run_id), expires)
    return f"{base.rstrip('/')}{CALLBACK_PATH}/{run_id}?expires={expires}&signature={signature}"


def safety_identifier(account_id: str) -> str:
    """§1.3: a stable per-end-user id, a hash of ours (≤ 64 characters)."""
    return "wfrun-" + hashlib.sha256(account_id.encode()).hexdigest()[:48]


def expires_after(claim: Claim) -> int:
    """The run's ``execution_expires_after``: an hour past its time limit, fingerprinted so a
    lost create can be recognised (:func:`wfrun.domain.seedance.fingerprint_expiry`)."""
    base = seedance.expiry_base(claim.spec.timeout_seconds)
    return seedance.fingerprint_expiry(claim.run.id, base)


def request_of(claim: Claim) -> VideoRequest:
    validated = validate_inputs(claim.spec.inputs, claim.run.inputs)
    return video_request(claim.spec, validated, claim.run.inputs)


def ark_failure(code: str, message: str, *, during: str) -> EnginePermanent:
    failure = seedance.classify_ark_code(code, during=during)
    detail = message
    wire_code = failure_code(failure.engine_code)
    if wire_code is FailureCode.CONTENT_REAL_PERSON_DETECTED:
        detail += (
            "; resubmit with contains_real_person_material: true to register the material "
            "(a verified person's authorisation is required)"
        )
    output_refused = failure.status == 422  # generated content refused, not the input
    return EnginePermanent(
        detail,
        code=wire_code,
        reason=failure.reason,
        category=Category.UNPROCESSABLE if output_refused else None,
    )


async def discard(storage: ObjectStore, keys: list[str]) -> None:
    for key in keys:
        try:
            await storage.delete(key)
        except Exception:  # retention is best effort; the run's outcome stands
            log.warning("could not delete staged input %s", key, exc_info=True)
