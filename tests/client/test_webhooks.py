"""``webhooks.verify`` against signatures computed by hand (Standard Webhooks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from wfrun_client import WebhookVerificationError, webhooks

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OTHER = "whsec_" + base64.b64encode(b"\x07" * 32).decode()
BODY = json.dumps({"type": "run.succeeded", "timestamp": "2026-11-29T00:00:00Z",
                   "data": {"run_order_id": "wfrun_0123456789abcdef0123", "run_status": "succeeded"}})  # fmt: skip
NOW = 1_790_000_000


def _by_hand(key: bytes, msg_id: str, ts: int, body: str) -> str:
    mac = hmac.new(key, f"{msg_id}.{ts}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _headers(signature: str, ts: int = NOW) -> dict[str, str]:
    return {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(ts), "Webhook-Signature": signature}


def test_a_signed_delivery_verifies_and_returns_its_body():
    got = webhooks.verify(
        _headers(_by_hand(KEY, "msg_1", NOW, BODY)), BODY.encode(), SECRET, now=NOW
    )
    assert got["data"]["run_status"] == "succeeded"
    assert webhooks.sign(SECRET, "msg_1", NOW, BODY) == _by_hand(KEY, "msg_1", NOW, BODY)


def test_either_signature_of_a_rotation_verifies():
    both = f"{_by_hand(b'x' * 32, 'msg_1', NOW, BODY)} {_by_hand(KEY, 'msg_1', NOW, BODY)}"
    assert webhooks.verify(_headers(both), BODY, SECRET, now=NOW)["type"] == "run.succeeded"


@pytest.mark.parametrize(
    ("headers", "body", "secret", "now", "why"),
    [
        (_headers(_by_hand(KEY, "msg_1", NOW, BODY)), BODY.replace("succeeded", "failed"), SECRET, NOW, "no signature"),
        (_headers(_by_hand(KEY, "msg_1", NOW, BODY)), BODY, OTHER, NOW, "no signature"),
        (_headers(_by_hand(KEY, "msg_2", NOW, BODY)), BODY, SECRET, NOW, "no signature"),
        (_headers(_by_hand(KEY, "msg_1", NOW, BODY)), BODY, SECRET, NOW + 301, "too far"),
        (_headers(_by_hand(KEY, "msg_1", NOW, BODY)), BODY, SECRET, NOW - 301, "too far"),
        (_headers("v1,bm9wZQ=="), BODY, SECRET, NOW, "no signature"),
        ({"webhook-id": "msg_1", "webhook-timestamp": str(NOW)}, BODY, SECRET, NOW, "missing header webhook-signature"),
        (_headers(_by_hand(KEY, "msg_1", NOW, BODY), ts="soon"), BODY, SECRET, NOW, "not a number"),  # type: ignore[arg-type]
        (_headers(_by_hand(KEY, "msg_1", NOW, BODY)), BODY, "whsec_%%%", NOW, "not whsec_"),
    ],
)  # fmt: skip
def test_anything_else_is_refused(headers, body, secret, now, why):
    with pytest.raises(WebhookVerificationError, match=why):
        webhooks.verify(headers, body, secret, now=now)


def test_within_the_tolerance_is_accepted():
    signature = _by_hand(KEY, "msg_1", NOW, BODY)
    assert webhooks.verify(_headers(signature), BODY, SECRET, now=NOW + 300)
    assert webhooks.verify(_headers(signature), BODY, SECRET, now=NOW + 5, tolerance=10)
