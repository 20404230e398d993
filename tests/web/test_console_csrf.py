"""Every POST of the console refuses a request without the session's CSRF token (403) and
changes nothing; after sign-in ``?next=`` keeps its query string; the cookie is Secure behind
a TLS proxy (an https public base URL)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from tests.web.console import PASSWORD, World, csrf_of, serve_console, signed_in_client
from wfrun.api.app import create_app
from wfrun.db.schema import metadata
from wfrun.runtime import Runtime
from wfrun.web.context import PREFIX
from wfrun.web.session import Sessions, fresh


def _routes(routes: list[Any], prefix: str = "") -> list[tuple[str, set[str]]]:
    """(path, methods) of every route, looking into included routers (FastAPI keeps them
    as one entry holding the router and its prefix)."""
    found: list[tuple[str, set[str]]] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += _routes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(getattr(route, "path", None), str):
            found.append((prefix + route.path, set(getattr(route, "methods", None) or ())))
    return found


def _console_posts(runtime: Runtime) -> list[str]:
    app = create_app(runtime.settings, runtime=runtime, background=None)
    found = _routes(list(app.routes))
    return sorted(path for path, methods in found if path.startswith(PREFIX) and "POST" in methods)


async def _row_counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.db.transaction() as conn:
        return {
            table.name: int(
                (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            )
            for table in metadata.sorted_tables
        }


def _fill(path: str, world: World) -> str:
    values = {"account_id": world.customer_id, "workflow_id": world.workflow_id}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


async def test_every_console_post_refuses_a_missing_token_and_changes_nothing(
    runtime, world: World
):
    posts = _console_posts(runtime)
    assert len(posts) >= 20, posts
    assert "/console/operator/accounts/{account_id}/topup" in posts
    async with (
        serve_console(runtime, worker=False) as console,
        signed_in_client(runtime, console, world.operator_id, "ops@example.com") as boss,
    ):
        before = await _row_counts(runtime)
        form = {"amount": "1", "memo": "m", "name": "k", "email": "e@example.com"}
        form |= {"url": "https://example.com/h", "password": PASSWORD, "revision_id": "x"}
        refused = {}
        for path in posts:
            answer = await boss.post(_fill(path, world), data=form)
            refused[path] = answer.status_code
        assert refused == dict.fromkeys(posts, 403)
        assert await _row_counts(runtime) == before


async def test_sign_in_returns_to_the_page_with_its_query_string(runtime, world: World):
    async with (
        serve_console(runtime, worker=False) as console,
        signed_in_client(runtime, console, world.customer_id, "one@example.com"),
        httpx.AsyncClient(base_url=console.base_url) as client,
    ):
        away = await client.get("/console/runs?status=queued&page=2")
        assert away.status_code == 303
        assert (
            away.headers["location"]
            == "/console/login?next=/console/runs%3Fstatus%3Dqueued%26page%3D2"
        )
        login = await client.get(away.headers["location"])
        assert 'name="next" value="/runs?status=queued&amp;page=2"' in login.text
        form = {"csrf_token": csrf_of(login.text), "email": "one@example.com"}
        form |= {"password": PASSWORD, "next": "/runs?status=queued&page=2"}
        signed = await client.post("/console/login", data=form)
        assert signed.headers["location"] == "/console/runs?status=queued&page=2"
        token = csrf_of((await client.get("/console/login")).text)  # a new session, a new token
        form |= {"next": "//evil.example/x?y=1", "csrf_token": token}
        again = await client.post("/console/login", data=form)
        assert again.headers["location"] == "/console/"


def test_the_cookie_is_secure_behind_a_tls_proxy():
    request = Request({"type": "http", "scheme": "http", "headers": [], "path": "/console/"})
    for secure, expected in ((True, True), (False, False)):
        response = Response()
        Sessions("k" * 32, secure=secure).write(request, response, fresh(user_id="u"))
        assert ("; secure" in response.headers["set-cookie"].lower()) is expected
