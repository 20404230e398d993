"""The one rule for text that comes in through the API, and the one place it is applied.

Two kinds of text cannot go further: a NUL character (PostgreSQL stores no NUL in text nor in
JSON) and an unpaired UTF-16 surrogate (a JSON body may spell ``"\\ud800"``, which no UTF-8
encoder, database or response can carry). JSON numbers that are not finite (``NaN``,
``Infinity``, ``1e999``) are refused with them: no JSON column stores them.

:func:`refuse_bad_text` runs as an app-wide dependency, so every route goes through it after
routing and before authentication or body validation: it reads the path parameters, the query
and the parsed JSON body. Multipart uploads are parsed by :mod:`wfrun.api.uploads`, which applies
:func:`check_text` to each form value and the file name as it parses them.
"""

from __future__ import annotations

import email.message
import math
import re
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

from wfrun.errors import (
    IdempotencyKeyRequired,
    InvalidInput,
    InvalidParameter,
    InvalidWorkflowInput,
)

_SURROGATE = re.compile("[\ud800-\udfff]")
_ERROR_BY_FIELD: dict[str, type[InvalidInput]] = {
    "inputs": InvalidWorkflowInput,
    "idempotency_key": IdempotencyKeyRequired,
}


def text_problem(value: str) -> str | None:
    """What keeps ``value`` out of wfrun, or None when it may pass."""
    if "\x00" in value:
        return "contains a NUL character"
    found = _SURROGATE.search(value)
    if found is not None:
        return f"contains an unpaired surrogate (U+{ord(found.group()):04X})"
    return None


def _problem(value: object) -> str | None:
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    return None


def check_text(where: str, value: str) -> None:
    """Raise InvalidParameter naming ``where`` when ``value`` may not pass."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidParameter(f"{where}: {problem}")


def _children(where: str, value: object) -> list[tuple[str, object]]:
    if isinstance(value, dict):
        return [(f"{where}.{key}" if where else str(key), item) for key, item in value.items()]
    if isinstance(value, list):
        return [(f"{where}[{index}]", item) for index, item in enumerate(value)]
    return []


def _key_problem(where: str, value: object) -> tuple[str, str] | None:
    for key in value if isinstance(value, dict) else ():
        problem = text_problem(str(key))
        if problem is not None:
            return where or "body", f"a key {problem}"
    return None


def find_problem(document: object, root: str = "") -> tuple[str, str] | None:
    """The first ``(where, problem)`` in a parsed JSON document, walked without recursion."""
    pending: list[tuple[str, object]] = [(root, document)]
    while pending:
        where, value = pending.pop()
        problem = _problem(value)
        if problem is not None:
            return where or "body", problem
        found = _key_problem(where, value)
        if found is not None:
            return found
        pending.extend(reversed(_children(where, value)))
    return None


def _body_error(where: str, problem: str) -> InvalidInput:
    field = where.split(".", 1)[0].split("[", 1)[0]
    error = _ERROR_BY_FIELD.get(field, InvalidParameter)
    return error(f"{where}: {problem}")


def _is_json(request: Request) -> bool:
    message = email.message.Message()
    message["content-type"] = request.headers.get("content-type", "")
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _json_body(request: Request) -> Any:
    """The body FastAPI parsed for this route (read again from its cache), if any."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None or not _is_json(request):
        return None
    if not await request.body():
        return None
    return await request.json()


async def refuse_bad_text(request: Request) -> None:
    """App-wide dependency: path parameters, query and JSON body all pass :func:`text_problem`.

    Raises:
        InvalidParameter: naming the parameter or body field (``INVALID_WORKFLOW_INPUT`` for
            ``inputs``, ``IDEMPOTENCY_KEY_REQUIRED`` for ``idempotency_key``).
    """
    for name, value in request.path_params.items():
        check_text(name, str(value))
    for name, value in request.query_params.multi_items():
        check_text("a query parameter name", name)
        check_text(name, value)
    found = find_problem(await _json_body(request))
    if found is not None:
        raise _body_error(*found)
