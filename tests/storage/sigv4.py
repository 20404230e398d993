"""An independent SigV4 query-string (presigned GET URL) verifier, written from AWS's spec.

moto serves presigned URLs without checking their signature or expiry (and crashes with a 500
on them once IAM auth is switched on), so the tests check :meth:`S3Storage.presigned_url`'s
signatures here, with hashlib and hmac only, the way S3 itself does.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


def _quote(value: str) -> str:
    return quote(value, safe="-_.~")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def presigned_get_problem(
    url: str, *, access_key: str, secret_key: str, now: datetime | None = None
) -> str | None:
    """Why S3 would refuse a GET of ``url``, or None when the signature and expiry hold."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    try:
        signature = params.pop("X-Amz-Signature")
        credential = params["X-Amz-Credential"]
        amz_date = params["X-Amz-Date"]
        expires = int(params["X-Amz-Expires"])
        key_id, date, region, service, terminator = credential.split("/")
        issued = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError) as error:
        return f"malformed query: {error!r}"
    if params.get("X-Amz-Algorithm") != ALGORITHM or params.get("X-Amz-SignedHeaders") != "host":
        return "unsupported algorithm or signed headers"
    if key_id != access_key or terminator != "aws4_request" or amz_date[:8] != date:
        return "bad credential scope"
    now = now or datetime.now(UTC)
    if not issued - timedelta(seconds=1) <= now <= issued + timedelta(seconds=expires):
        return "expired or not yet valid"
    canonical_request = "\n".join(
        [
            "GET",
            quote(unquote(parts.path), safe="/-_.~"),
            "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(params.items())),
            f"host:{parts.netloc}\n",
            "host",
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
    signing_key = _hmac(f"AWS4{secret_key}".encode(), date)
    for part in (region, service, "aws4_request"):
        signing_key = _hmac(signing_key, part)
    expected = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, signature) else "signature does not match"
