"""Exceptions: one class per failure category of the API, all carrying the envelope's error.

Every failure the server answers is chenyu's envelope
``{"code": 1, "msg": …, "data": {"error": {reason, detail, engine_code, status_code}}}``;
:func:`from_envelope` turns it into the class of its HTTP status, so callers catch by category
(``except NotFound``) and branch on the precise ``engine_code`` when they need to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class WfrunError(Exception):
    """Base class of everything this package raises."""


class APIError(WfrunError):
    """The server answered with a failure envelope (or something that is not an envelope).

    Attributes:
        engine_code: the machine-readable code, e.g. ``INVALID_WORKFLOW_INPUT``.
        detail: the precise detail, e.g. which input was wrong.
        reason: the short reason (also the envelope's ``msg``).
        status_code: the HTTP status of the failure.
        retry_after: seconds the server asked to wait (``Retry-After``), if it said.
        request_id: the server's ``X-Request-Id`` of the request, for support.
    """

    def __init__(
        self,
        *,
        engine_code: str,
        detail: str,
        reason: str,
        status_code: int,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{engine_code} ({status_code}): {detail or reason}")
        self.engine_code = engine_code
        self.detail = detail
        self.reason = reason
        self.status_code = status_code
        self.retry_after = retry_after
        self.request_id = request_id

    def to_dict(self) -> dict[str, Any]:
        """The error as the envelope's ``data.error`` (for ``--json`` output)."""
        return {
            "reason": self.reason,
            "detail": self.detail,
            "engine_code": self.engine_code,
            "status_code": self.status_code,
        }


class InvalidRequest(APIError):
    """400: bad input (an unknown or missing input, a malformed value, a bad parameter)."""


class AuthError(APIError):
    """401: no API key, or an unknown or revoked one."""


class InsufficientBalance(APIError):
    """402: the available balance (or a spend limit) does not cover the quote; nothing frozen."""


class SpendLimitExceeded(InsufficientBalance):
    """402 ``SPEND_LIMIT_EXCEEDED``: the quote would take the API key past its spend limit for
    the period (UTC day, UTC month or total); nothing frozen."""


class MaxCostExceeded(InvalidRequest):
    """400 ``MAX_COST_EXCEEDED``: the quote is above the request's ``max_cost``; nothing
    frozen."""


COST_LIMIT_REACHED = "COST_LIMIT_REACHED"
"""The ``error_code`` of a run stopped at its ceiling (its ``max_cost``, the account's balance
plus the operator's credit limit, or its key's spend limit) and charged exactly that."""


class PermissionDenied(APIError):
    """403: the key may not do this."""


class NotFound(APIError):
    """404: no such workflow, revision, run or asset for this key (or no such endpoint)."""


class Conflict(APIError):
    """409: the request conflicts with the current state (e.g. no published revision)."""


class TooLarge(APIError):
    """413: the body or upload is larger than the server accepts."""


class IdempotencyConflict(APIError):
    """422: the idempotency key was already used with a different request."""


class RateLimited(APIError):
    """429: too many requests or queued runs; ``retry_after`` says when to try again."""


class ServerError(APIError):
    """500 (or any other unexpected status): the server failed."""


class ServiceUnavailable(APIError):
    """503: the database, storage or an engine is unavailable; retry after ``retry_after``."""


class ConnectionFailed(WfrunError):
    """The server could not be reached (or the connection broke) after every attempt."""


class WaitTimeout(WfrunError, TimeoutError):
    """``runs.wait`` gave up before the run ended (the run itself goes on)."""


class WebhookVerificationError(WfrunError):
    """A webhook's signature, timestamp or headers do not verify."""


BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequest,
    401: AuthError,
    402: InsufficientBalance,
    403: PermissionDenied,
    404: NotFound,
    405: InvalidRequest,
    409: Conflict,
    413: TooLarge,
    422: IdempotencyConflict,
    429: RateLimited,
    503: ServiceUnavailable,
}


BY_CODE: dict[str, type[APIError]] = {
    "SPEND_LIMIT_EXCEEDED": SpendLimitExceeded,
    "MAX_COST_EXCEEDED": MaxCostExceeded,
}
"""Codes with a class of their own (a subclass of their status's class)."""


def _text(value: object, default: str) -> str:
    return value if isinstance(value, str) else default


def from_envelope(
    status: int,
    body: Any,
    *,
    retry_after: float | None = None,
    request_id: str | None = None,
) -> APIError:
    """The exception for a failure answer (``body`` the decoded JSON, or None if not JSON)."""
    error: Mapping[str, Any] = {}
    if isinstance(body, Mapping):
        data = body.get("data")
        if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
            error = data["error"]
    code = error.get("status_code")
    status_code = code if isinstance(code, int) and code >= 400 else status
    reason = _text(error.get("reason"), f"HTTP {status}")
    engine_code = _text(error.get("engine_code"), f"HTTP_{status}")
    cls = BY_CODE.get(engine_code) or BY_STATUS.get(status_code, ServerError)
    return cls(
        engine_code=engine_code,
        detail=_text(error.get("detail"), reason),
        reason=reason,
        status_code=status_code,
        retry_after=retry_after,
        request_id=request_id,
    )
