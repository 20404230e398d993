"""Every failure leaves the API in chenyu's envelope, with the HTTP status keyed by category:

    {"code": 1, "msg": reason, "data": {"error": {reason, detail, engine_code, status_code}}}

``code`` is non-zero for every failure (chenyu's documented example uses 1); clients branch on
``data.error.engine_code``. No expected business outcome is a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wfrun import errors as e

log = logging.getLogger(__name__)

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
    e.Category.INTERNAL: 500,
    e.Category.UNAVAILABLE: 503,
    e.Category.TIMEOUT: 504,
    e.Category.CANCELLED: 200,
}
"""The one place a category becomes an HTTP status (requests' and ended runs' alike)."""


def status_for(error: type[e.ServiceError]) -> int:
    """The HTTP status of an error class."""
    return STATUS_BY_CATEGORY[error.category]


def envelope(status: int, reason: str, detail: str, engine_code: str) -> JSONResponse:
    body = {
        "code": FAILURE_CODE,
        "msg": reason,
        "data": {
            "error": {
                "reason": reason,
                "detail": detail,
                "engine_code": engine_code,
                "status_code": status,
            }
        },
    }
    return JSONResponse(body, status_code=status)


def error_response(error: e.ServiceError) -> JSONResponse:
    return envelope(status_for(type(error)), error.reason, error.detail, error.engine_code)


async def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.ServiceError)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_describe(err) for err in exc.errors()]
    return error_response(e.InvalidParameter("; ".join(problems)))


def _describe(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query")]
    where = ".".join(loc) or "body"
    return f"{where}: {err.get('msg', 'invalid')}"


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return envelope(404, "Not found.", "no such endpoint", "ENDPOINT_NOT_FOUND")
    if exc.status_code == 405:
        return envelope(405, "Method not allowed.", str(exc.detail), "METHOD_NOT_ALLOWED")
    return envelope(exc.status_code, str(exc.detail), str(exc.detail), "HTTP_ERROR")


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return envelope(500, "Internal error.", "an unexpected error occurred", "INTERNAL_ERROR")


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
