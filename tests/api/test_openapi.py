"""The OpenAPI document describes every route the app serves (derived from ``app.routes``, so a
new endpoint cannot be left out), and unknown paths use the envelope."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from wfrun.api.app import create_app

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
UNDOCUMENTED = {
    ("/api/open/v2/openapi.json", "get"),  # the document itself and its viewer
    ("/api/open/v2/docs", "get"),
    ("/api/open/v2/redoc", "get"),
}
"""Routes deliberately left out of the document; any other route must be in it."""
WEBHOOKS = {
    ("/api/open/v2/webhooks/endpoints", "post"),
    ("/api/open/v2/webhooks/endpoints", "get"),
    ("/api/open/v2/webhooks/endpoints/update", "post"),
    ("/api/open/v2/webhooks/endpoints/delete", "post"),
    ("/api/open/v2/webhooks/endpoints/rotate-secret", "post"),
    ("/api/open/v2/webhooks/secret", "get"),
    ("/api/open/v2/webhooks/deliveries", "get"),
    ("/api/open/v2/webhooks/deliveries/resend", "post"),
}
"""open-api-v2.md §7 "Live runs": the webhook routes, by their contract names."""


def _route_entries(app: FastAPI) -> list[Any]:
    """Every route of ``app.routes``, with included routers expanded (FastAPI ≥ 0.165 keeps an
    ``include_router`` as one entry; ``iter_route_contexts`` walks into it)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def _served(app: FastAPI) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(documented, undocumented) routes as (path, method), HEAD aside (Starlette adds it)."""
    documented: set[tuple[str, str]] = set()
    hidden: set[tuple[str, str]] = set()
    for route in _route_entries(app):
        path = getattr(route, "path_format", None) or route.path
        methods = {m.lower() for m in (route.methods or ())} - {"head"}
        original = getattr(route, "original_route", route)  # the route itself on older FastAPI
        in_schema = isinstance(original, APIRoute) and getattr(route, "include_in_schema", False)
        (documented if in_schema else hidden).update((path, m) for m in methods)
    return documented, hidden


async def test_openapi_lists_every_endpoint(runtime, http):
    document = (await http.get("/openapi.json")).json()
    listed = {
        (path, method)
        for path, operations in document["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    }
    documented, hidden = _served(create_app(runtime.settings, runtime=runtime))
    assert len(documented) >= 22
    assert listed == documented  # every route served is documented, and nothing else is
    console = {(path, method) for path, method in hidden if path.split("/")[1] in ("", "console")}
    assert hidden - console == UNDOCUMENTED  # the web console's pages are not API operations
    assert ("/console/login", "post") in console
    assert listed >= WEBHOOKS
    paths = document["paths"]
    upload = paths["/api/open/v2/assets"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert "402" in paths["/api/open/v2/workflow/run/submit"]["post"]["responses"]
    events = paths["/api/open/v2/workflow/run/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert {"404", "429"} <= set(events["responses"])
    names = {p["name"] for p in events["parameters"]}
    assert names == {"run_order_id", "last_event_id", "Last-Event-ID"}
    for path in ("/api/open/v2/workflow/run/submit", "/api/open/v2/model-runs/videos"):
        operation = paths[path]["post"]
        assert [p["name"] for p in operation["parameters"]] == ["Prefer"]
        assert "Preference-Applied" in operation["responses"]["200"]["headers"]
        body = document["components"]["schemas"][
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit(
                "/", 1
            )[1]
        ]
        assert "callback_url" in body["properties"]


async def test_unknown_paths_and_methods_use_the_envelope(http):
    missing = await http.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["data"]["error"]["engine_code"] == "ENDPOINT_NOT_FOUND"
    wrong = await http.get("/workflow/run/submit")
    assert wrong.status_code == 405
    assert wrong.json()["data"]["error"]["engine_code"] == "METHOD_NOT_ALLOWED"
    assert wrong.headers["allow"] == "POST"
