"""Request dependencies: the runtime, the caller, pagination."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from wfrun.api.access_log import remember_account
from wfrun.api.wire import Links
from wfrun.errors import InvalidApiKey, MissingApiKey
from wfrun.runtime import Runtime
from wfrun.services import webhooks
from wfrun.services.accounts import Principal, authenticate


async def get_runtime(request: Request) -> Runtime:
    """The process's runtime (async: FastAPI runs a sync dependency in its threadpool, a
    thread hop on every request)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_principal(request: Request, runtime: RuntimeDep) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise MissingApiKey("send the API key as 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidApiKey("the Authorization header must be 'Bearer <key>'")
    principal = await authenticate(runtime.db, token.strip())
    remember_account(request.scope, principal.account_id)
    runtime.rates.admit(principal.api_key_id, principal.account_id)  # 429 RATE_LIMITED
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
Page = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")]
PageSize = Annotated[int, Query(ge=1, le=100, description="Items per page, at most 100.")]


def base_url(request: Request, runtime: Runtime) -> str:
    """Where signed links point: the configured public URL or this request's origin."""
    configured = runtime.settings.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


API_PREFIX = "/api/open/v2"


def links(request: Request, runtime: Runtime) -> Links:
    """Fresh signed-link maker for this request."""
    ttl = runtime.settings.signed_url_ttl_seconds
    return Links(runtime.signer, runtime.storage, base_url(request, runtime), ttl)


def api_base(request: Request, runtime: Runtime) -> str:
    return base_url(request, runtime) + API_PREFIX


def callback_url(value: str | None, runtime: Runtime) -> str | None:
    """A submit's ``callback_url``, refused (400 naming the field, before anything is frozen)
    when the webhook address policy forbids it."""
    if value is None:
        return None
    return webhooks.check_receiver("callback_url", value, runtime.webhook_policy)
