"""The document-wide parts of the OpenAPI document, added once for every operation: the bearer
security scheme, ``servers``, the error envelope under the statuses every operation can
answer, request field descriptions, and no FastAPI 422 (this app answers 400 in the envelope)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from wfrun.api.contract import requests
from wfrun.api.contract.envelope import STATUS_DESCRIPTIONS, ErrorEnvelope
from wfrun.api.deps import get_principal

SCHEME = "bearerAuth"
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "The API key: `Authorization: Bearer <key>` (`wfrun keys create`).",
}
ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
DESCRIPTION = (
    "chenyu Open API v2 compatible. Every answer is `{code, msg, data}`; failures carry "
    "`data.error {reason, detail, engine_code, status_code}` and the HTTP status of their "
    "category. Amounts are decimal strings with 8 places (CNY)."
)
Operation = tuple[str, str]
"""(path, lower-case method)."""


def install(app: FastAPI, *, public_base_url: str | None) -> None:
    """Replace ``app.openapi`` by the completed document (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=DESCRIPTION,
                routes=app.routes,
                servers=[_server(public_base_url)],
            )
            complete(document, secured=set(secured_operations(app.routes)))
            app.openapi_schema = document
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 (FastAPI's documented override)


def _server(public_base_url: str | None) -> dict[str, str]:
    if public_base_url:
        return {"url": public_base_url.rstrip("/"), "description": "This server"}
    return {"url": "/", "description": "This server (same origin)"}


def secured_operations(routes: Iterable[Any]) -> Iterable[Operation]:
    """Operations whose dependencies authenticate the caller (``deps.get_principal``)."""
    for route, original in _api_routes(routes):
        if get_principal in set(_calls(original.dependant)):
            path = getattr(route, "path_format", None) or original.path_format
            yield from ((path, m.lower()) for m in original.methods or ())


def _calls(dependant: Dependant) -> Iterable[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _api_routes(routes: Iterable[Any]) -> Iterable[tuple[Any, APIRoute]]:
    """(route as served, its APIRoute), included routers expanded (FastAPI ≥ 0.165 keeps
    them nested; the served path is the context's)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # older FastAPI: already flat
        flat: Iterable[Any] = routes
    else:
        flat = iter_route_contexts(list(routes))
    for route in flat:
        original = getattr(route, "original_route", route)
        if isinstance(original, APIRoute) and original.include_in_schema:
            yield route, original


def complete(document: dict[str, Any], *, secured: set[Operation]) -> None:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in FASTAPI_VALIDATION:
        schemas.pop(name, None)
    schemas.update(_envelope_schemas())
    components["securitySchemes"] = {SCHEME: SECURITY_SCHEME}
    _describe_bodies(schemas)
    for path, method, operation in _operations(document):
        _complete_operation(operation, secured=(path, method) in secured)


def _envelope_schemas() -> dict[str, Any]:
    schema = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    nested: dict[str, Any] = schema.pop("$defs", {})
    return {**nested, "ErrorEnvelope": schema}


def _operations(document: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def _complete_operation(operation: dict[str, Any], *, secured: bool) -> None:
    responses: dict[str, Any] = operation["responses"]
    _drop_fastapi_422(responses)
    operation["security"] = [{SCHEME: []}] if secured else []
    statuses = [400, 413, 500]  # refuse_bad_text and BodyLimit guard every request
    if secured:  # an API key may be refused, rate limited (429), or the server unavailable
        statuses += [401, 429, 503]
    for status in statuses:
        responses.setdefault(str(status), _error_response(status))
    for code, response in responses.items():
        if int(code) >= 400:  # JSON even where the success is not (an HTML page)
            response["content"] = _error_response(int(code))["content"]
    for parameter in operation.get("parameters", []):
        _describe(parameter, requests.PARAMETERS.get(parameter["name"], {}))
    operation["responses"] = dict(sorted(responses.items()))


def _drop_fastapi_422(responses: dict[str, Any]) -> None:
    schema = responses.get("422", {}).get("content", {}).get("application/json", {})
    if schema.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": STATUS_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": ENVELOPE_REF}}},
    }


def _describe(target: dict[str, Any], words: dict[str, Any]) -> None:
    for key, value in words.items():
        target.setdefault(key, value)


def _describe_bodies(schemas: dict[str, Any]) -> None:
    for name, fields in requests.BODY_FIELDS.items():
        model = schemas.get(name)
        if model is None:
            continue
        for field, words in fields.items():
            prop = model["properties"][field]
            if "type" in words:
                prop.clear()
            prop.update(words)
        required = set(model.get("required", [])) | set(requests.REQUIRED.get(name, []))
        if required:
            model["required"] = sorted(required)
