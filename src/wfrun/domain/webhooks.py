"""Standard Webhooks, the pure part: secrets, signatures, event names, retry waits.

A secret is ``whsec_`` + base64 of 32 random bytes; the HMAC key is the decoded bytes. A
message is signed as ``v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>``; during a secret
rotation both secrets sign and the header carries both signatures, space-separated, so a
receiver holding either verifies (https://www.standardwebhooks.com/, "Signature scheme").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
from collections.abc import Iterable, Sequence

from wfrun.errors import InvalidParameter

SECRET_PREFIX = "whsec_"
RUN_EVENTS = ("run.queued", "run.started", "run.succeeded", "run.failed", "run.cancelled")
PROGRESS_EVENT = "run.progress"
EVENT_TYPES = (
    *RUN_EVENTS,
    PROGRESS_EVENT,
    *(name.replace("run.", "model_run.", 1) for name in (*RUN_EVENTS, PROGRESS_EVENT)),
)
"""Every event type an endpoint may ask for. ``*.progress`` is opt-in: never implied."""
DEFAULT_EVENTS = tuple(name for name in EVENT_TYPES if not name.endswith(".progress"))
EXCERPT_BYTES = 1024


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of ``whsec_<base64>`` (the bytes the base64 part decodes to)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """One ``v1,<base64>`` signature of ``{id}.{timestamp}.{body}``."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets_: Sequence[str], message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    return " ".join(signature(s, message_id, timestamp, body) for s in secrets_)


def headers(secrets_: Sequence[str], message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, message_id, timestamp, body),
        "content-type": "application/json",
    }


def check_events(events: Iterable[str]) -> list[str]:
    """The event filter as given, deduplicated; an unknown name is a 400 naming it."""
    wanted = list(dict.fromkeys(events))
    unknown = [name for name in wanted if name not in EVENT_TYPES]
    if unknown:
        known = ", ".join(EVENT_TYPES)
        raise InvalidParameter(f"events: unknown event type(s) {unknown} (known: {known})")
    if not wanted:
        raise InvalidParameter("events: give at least one event type")
    return wanted


def retry_wait(schedule: Sequence[float], step: int, jitter: float, rng: random.Random) -> float:
    """Seconds before retry ``step`` (0-based) of a failed delivery, or -1 when the schedule
    is spent. The jitter spreads retries of many deliveries that failed together."""
    if step >= len(schedule):
        return -1.0
    return schedule[step] * (1 + jitter * rng.random())


def excerpt(body: bytes) -> str:
    """At most 1 KiB of a receiver's answer, as text, for the delivery log."""
    return body[:EXCERPT_BYTES].decode("utf-8", "replace")
