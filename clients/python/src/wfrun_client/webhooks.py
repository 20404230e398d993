"""Verifying wfrun's webhooks (Standard Webhooks signing, open-api-v2.md §7).

A delivery carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: one or more space-separated ``v1,<base64 HMAC-SHA256>`` over
``"{id}.{timestamp}.{body}"`` keyed by the base64-decoded part of the ``whsec_…`` secret (two
during a secret rotation: either verifies). Verify the raw body bytes as received, before
parsing them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from wfrun_client.errors import WebhookVerificationError

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300
"""Seconds a timestamp may be away from now (replayed or delayed deliveries are refused)."""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing header {name}")


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("the secret is not whsec_<base64>") from exc


def sign(secret: str, message_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<base64>`` signature of one message (what the server sends)."""
    raw = body.encode() if isinstance(body, str) else body
    signed = f"{message_id}.{timestamp}.".encode() + raw
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def _check_timestamp(value: str, tolerance: float, now: float | None) -> int:
    try:
        timestamp = int(value)
    except ValueError as exc:
        raise WebhookVerificationError(f"webhook-timestamp is not a number: {value!r}") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far from now")
    return timestamp


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Any:
    """The delivery's JSON body once its signature and timestamp verify.

    Raises:
        WebhookVerificationError: a header is missing, the timestamp is outside ``tolerance``
            seconds of ``now``, or no ``v1`` signature matches.
    """
    message_id = _header(headers, "webhook-id")
    timestamp = _check_timestamp(_header(headers, "webhook-timestamp"), tolerance, now)
    expected = sign(secret, message_id, timestamp, body).encode()
    offered = _header(headers, "webhook-signature").split()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in offered):
        raise WebhookVerificationError("no signature matches")
    return json.loads(body)
