"""What dispatch and tracking of Seedance runs share: the per-user safety identifier, the
run's request and expiry, failure mapping and clean-up of staged media."""

from __future__ import annotations

import hashlib
import logging

from wfrun.domain.failures import FailureCode
from wfrun.domain.manifest import validate_inputs
from wfrun.domain.seedance import VideoRequest
from wfrun.engines.base import EnginePermanent
from wfrun.engines.seedance import wire
from wfrun.services.claims import Claim
from wfrun.services.runs import video_request
from wfrun.storage.base import ObjectStore

log = logging.getLogger(__name__)


def safety_identifier(account_id: str) -> str:
    """§1.3: a stable per-end-user id, a hash of ours (≤ 64 characters)."""
    return "wfrun-" + hashlib.sha256(account_id.encode()).hexdigest()[:48]


def expires_after(claim: Claim) -> int:
    """The run's ``execution_expires_after``: an hour past its time limit, fingerprinted so a
    lost create can be recognised (:func:`wfrun.engines.seedance.wire.fingerprint_expiry`)."""
    base = wire.expiry_base(claim.spec.timeout_seconds)
    return wire.fingerprint_expiry(claim.run.id, base)


def request_of(claim: Claim) -> VideoRequest:
    validated = validate_inputs(claim.spec.inputs, claim.run.inputs)
    return video_request(claim.spec, validated, claim.run.inputs)


def ark_failure(code: str, message: str, *, during: str) -> EnginePermanent:
    failure = wire.classify_ark_code(code, during=during)
    detail = message
    if failure.code is FailureCode.CONTENT_REAL_PERSON_DETECTED:
        detail += (
            "; resubmit with contains_real_person_material: true to register the material "
            "(a verified person's authorisation is required)"
        )
    return EnginePermanent(
        detail, code=failure.code, reason=failure.reason, category=failure.category
    )


async def discard(storage: ObjectStore, keys: list[str]) -> None:
    for key in keys:
        try:
            await storage.delete(key)
        except Exception:  # retention is best effort; the run's outcome stands
            log.warning("could not delete staged input %s", key, exc_info=True)
