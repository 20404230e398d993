"""Every failure leaves the API in chenyu's envelope, with the HTTP status keyed by category:

    {"code": 1, "msg": reason, "data": {"error": {reason, detail, engine_code, status_code}}}

``code`` is non-zero for every failure (chenyu's documented example uses 1); clients branch on
``data.error.engine_code``. No expected business outcome is a 500. The envelope always renders
(text UTF-8 cannot carry is escaped), and every 429 and 503 carries ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wfrun import errors as e

FAILURE_CODE = 1

STATUS_BY_CATEGORY: dict[e.Category, int] = {
    e.Category.INVALID_INPUT: 400,
    e.Category.UNAUTHENTICATED: 401,
    e.Category.PAYMENT_REQUIRED: 402,
    e.Category.FORBIDDEN: 403,
    e.Category.NOT_FOUND: 404,
    e.Category.CONFLICT: 409,
    e.Category.TOO_LARGE: 413,
    e.Category.UNPROCESSABLE: 422,
    e.Category.RATE_LIMITED: 429,
    e.Category.INTERNAL: 500,
    e.Category.UNAVAILABLE: 503,
    e.Category.TIMEOUT: 504,
    e.Category.CANCELLED: 200,
}
"""The one place a category becomes an HTTP status (requests' and ended runs' alike)."""


def status_for(error: type[e.ServiceError]) -> int:
    """The HTTP status of an error class."""
    return STATUS_BY_CATEGORY[error.category]


UNAVAILABLE_STATUS = STATUS_BY_CATEGORY[e.Category.UNAVAILABLE]
RETRY_STATUSES = frozenset({UNAVAILABLE_STATUS, STATUS_BY_CATEGORY[e.Category.RATE_LIMITED]})
DEFAULT_RETRY_AFTER = 5


def _renderable(text: str) -> str:
    """``text`` that UTF-8 can carry (an unpaired surrogate is written out as ``\\udXXX``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def envelope(
    status: int,
    reason: str,
    detail: str,
    engine_code: str,
    *,
    retry_after: int = DEFAULT_RETRY_AFTER,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The error envelope; it always renders, and every 429 and 503 carries ``Retry-After``."""
    body = {
        "code": FAILURE_CODE,
        "msg": _renderable(reason),
        "data": {
            "error": {
                "reason": _renderable(reason),
                "detail": _renderable(detail),
                "engine_code": _renderable(engine_code),
                "status_code": status,
            }
        },
    }
    extra = dict(headers or {})
    if status in RETRY_STATUSES:
        extra.setdefault("Retry-After", str(retry_after))
    return JSONResponse(body, status_code=status, headers=extra)


def error_response(
    error: e.ServiceError, *, retry_after: int = DEFAULT_RETRY_AFTER
) -> JSONResponse:
    return envelope(
        status_for(type(error)),
        error.reason,
        error.detail,
        error.engine_code,
        retry_after=retry_after,
    )


def internal_error_response(*, close: bool = False) -> JSONResponse:
    """The 500 of a bug. ``close`` adds ``Connection: close``, for when the server is about to
    drop the connection anyway (so the client does not send its next request down it)."""
    return envelope(
        500,
        "Internal error.",
        "an unexpected error occurred",
        "INTERNAL_ERROR",
        headers={"Connection": "close"} if close else None,
    )


class _Handlers:
    """The exception handlers, with the operator's ``Retry-After``."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after

    async def service_error(self, _request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, e.ServiceError)
        return error_response(exc, retry_after=exc.retry_after or self.retry_after)

    async def validation_error(self, _request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [_describe(err) for err in exc.errors()]
        return error_response(e.InvalidParameter("; ".join(problems)))

    async def http_error(self, _request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})  # e.g. a 405's Allow
        if exc.status_code == 404:
            return envelope(404, "Not found.", "no such endpoint", "ENDPOINT_NOT_FOUND")
        if exc.status_code == 405:
            detail = str(exc.detail)
            return envelope(
                405, "Method not allowed.", detail, "METHOD_NOT_ALLOWED", headers=headers
            )
        detail = str(exc.detail)
        return envelope(
            exc.status_code,
            detail,
            detail,
            "HTTP_ERROR",
            retry_after=self.retry_after,
            headers=headers,
        )

    async def unexpected(self, _request: Request, exc: Exception) -> JSONResponse:
        """Only for what escapes ``guards.CatchAll``: Starlette re-raises after answering and
        the server then drops the connection, so the answer says so. The error was logged
        already, with its request (``access_log.AccessLog``), so it is not logged again."""
        return internal_error_response(close=True)


def _describe(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query")]
    where = ".".join(loc) or "body"
    return f"{where}: {err.get('msg', 'invalid')}"


def install(app: FastAPI, *, retry_after: int = DEFAULT_RETRY_AFTER) -> None:
    handlers = _Handlers(retry_after)
    app.add_exception_handler(e.ServiceError, handlers.service_error)
    app.add_exception_handler(RequestValidationError, handlers.validation_error)
    app.add_exception_handler(StarletteHTTPException, handlers.http_error)
    app.add_exception_handler(Exception, handlers.unexpected)
