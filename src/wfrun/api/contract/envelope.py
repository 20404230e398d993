"""chenyu's envelopes as models: ``{code, msg, data}`` on success and the error envelope
``{code: 1, msg, data: {error: {reason, detail, engine_code, status_code}}}`` on failure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request: a parameter, the body or the workflow inputs (`INVALID_PARAMETER`, …)",
    401: "Missing or invalid API key (`MISSING_API_KEY`, `INVALID_API_KEY`)",
    402: "Insufficient balance; nothing was frozen (`INSUFFICIENT_BALANCE`)",
    403: "The signed link is invalid or expired",
    404: "Unknown or invisible resource",
    409: "Conflict with the resource's state (e.g. no published revision)",
    413: "Request body too large",
    422: "Idempotency key reused with a different request (`IDEMPOTENCY_KEY_MISMATCH`)",
    429: "Too many at once: this API key's request rate (`RATE_LIMITED`), its open event "
    "streams (`TOO_MANY_STREAMS`) or the account's queued runs (`TOO_MANY_QUEUED_RUNS`); "
    "nothing was done; retry after `Retry-After` seconds",
    500: "Unexpected server error (`INTERNAL_ERROR`)",
    503: "Temporarily unavailable (the database, an overloaded server, or a feature this "
    "server is not configured for); retry after `Retry-After` seconds",
    504: "Timed out",
}
"""Default descriptions of the error statuses (a route may say more)."""


class ErrorBody(BaseModel):
    """What went wrong; clients branch on ``engine_code``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(description="Short human-readable reason.", examples=["余额不足"])
    detail: str = Field(
        description="Precise detail of this failure.",
        examples=["available 0.50000000 CNY, the quote is 1.20000000 CNY"],
    )
    engine_code: str = Field(
        description="Stable machine-readable code (see docs/errors.md).",
        examples=["INSUFFICIENT_BALANCE"],
    )
    status_code: int = Field(description="The HTTP status of this answer.", examples=[402])


class ErrorData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


class ErrorEnvelope(BaseModel):
    """Every failure: ``code`` is 1, ``msg`` repeats ``data.error.reason``."""

    model_config = ConfigDict(extra="forbid")

    code: int = Field(description="Non-zero on failure (always 1).", examples=[1])
    msg: str = Field(description="Same as data.error.reason.", examples=["余额不足"])
    data: ErrorData


_OK_MODELS: dict[type[BaseModel], type[BaseModel]] = {}


def ok_envelope(data: type[BaseModel]) -> type[BaseModel]:
    """``{code: 0, msg, data}`` around ``data``, named ``<data>Response`` in the document."""
    if data not in _OK_MODELS:
        name = data.__name__.removesuffix("Data") + "Response"
        _OK_MODELS[data] = create_model(
            name,
            __config__=ConfigDict(extra="forbid"),
            __doc__=f"Success envelope around {data.__name__}.",
            code=(int, Field(description="0 on success.", examples=[0])),
            msg=(str, Field(description="Human-readable outcome.", examples=["查询成功"])),
            data=(data, Field(description=data.__doc__ or data.__name__)),
        )
    return _OK_MODELS[data]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The envelope under each of ``statuses``."""
    return {
        status: {"model": ErrorEnvelope, "description": STATUS_DESCRIPTIONS[status]}
        for status in statuses
    }


def documented(
    data: type[BaseModel] | None,
    *statuses: int,
    description: str | None = None,
    parameters: Sequence[dict[str, Any]] = (),
    headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Decorator keywords documenting a route: its 200 as the success envelope around ``data``
    (or left to ``response_class``, for non-JSON answers), plus the error envelope under the
    route-specific ``statuses`` (the document adds 400/401/413/500/503 where they apply).
    ``parameters`` are ones the handler reads itself (request headers such as ``Prefer``);
    ``headers`` are response headers the 200 may carry.

    The handler's return value is not filtered through the model (``response_model=None``):
    the model describes, and the test suite checks real responses against it."""
    responses = error_responses(*statuses)
    if data is not None:
        words = description or (data.__doc__ or "Success").strip()
        responses[200] = {"model": ok_envelope(data), "description": words}
        if headers:
            responses[200]["headers"] = headers
    keywords: dict[str, Any] = {"response_model": None, "responses": responses}
    if parameters:
        keywords["openapi_extra"] = {"parameters": list(parameters)}
    return keywords


def redirect(*statuses: int) -> dict[str, Any]:
    """Decorator keywords of a route answering ``307`` to a fresh signed link."""
    responses = error_responses(*statuses)
    responses[307] = {
        "description": "Redirect to a fresh signed, expiring download link",
        "headers": {"Location": {"description": "The link.", "schema": {"type": "string"}}},
    }
    return {
        "response_model": None,
        "response_class": RedirectResponse,
        "status_code": 307,
        "responses": responses,
    }


def binary(*statuses: int) -> dict[str, Any]:
    """Decorator keywords of a route answering the bytes of a stored file."""
    responses = error_responses(*statuses)
    responses[200] = {
        "description": "The file, with its guessed media type",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
    return {"response_model": None, "response_class": FileResponse, "responses": responses}


def event_stream(
    description: str, *statuses: int, parameters: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """Decorator keywords of a route answering ``text/event-stream`` (the suite's check accepts
    its answers once this is declared; describe the events in ``description``);
    ``parameters`` as in ``documented``."""
    responses = error_responses(*statuses)
    responses[200] = {
        "description": description,
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    keywords: dict[str, Any] = {
        "response_model": None,
        "response_class": StreamingResponse,
        "responses": responses,
    }
    if parameters:
        keywords["openapi_extra"] = {"parameters": list(parameters)}
    return keywords
