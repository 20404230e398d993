"""Sign-in (email + password, or an API key), invitations, sign-out, the language switch."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form
from starlette.responses import Response

from wfrun.errors import ServiceError
from wfrun.services import console_auth
from wfrun.web import i18n
from wfrun.web.context import PREFIX, Ctx, build_ctx
from wfrun.web.routing import PageRoute
from wfrun.web.session import fresh

router = APIRouter(route_class=PageRoute)
CtxDep = Annotated[Ctx, Depends(build_ctx)]
LOGIN_LIMIT = console_auth.LoginLimit(attempts=5, window=timedelta(minutes=15))


def _next(target: str | None) -> str:
    """Where to go after signing in: a console path (with its query string), never another
    site."""
    if not target or "\\" in target:
        return "/"
    parts = urlsplit(target)
    path = parts.path
    if parts.scheme or parts.netloc or not path.startswith(PREFIX + "/") or "//" in path:
        return "/"
    return path[len(PREFIX) :] + (f"?{parts.query}" if parts.query else "")


@router.get("/login")
async def login_page(ctx: CtxDep, next: str | None = None) -> Response:
    return ctx.page("login.html", next=_next(next))


@router.post("/login")
async def login(
    ctx: CtxDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    api_key: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    await ctx.check_csrf()
    address = ctx.request.client.host if ctx.request.client else "unknown"
    db = ctx.runtime.db
    try:
        if api_key.strip():
            identity = await console_auth.sign_in_with_key(
                db, secret=api_key, address=address, limit=LOGIN_LIMIT
            )
            session = fresh(key_id=identity.principal.api_key_id)
        else:
            identity = await console_auth.sign_in(
                db, email=email, password=password, address=address, limit=LOGIN_LIMIT
            )
            session = fresh(user_id=identity.principal.api_key_id, epoch=identity.epoch)
    except ServiceError as exc:
        status = ctx.bridge.status_for(type(exc))
        return ctx.page("login.html", http_status=status, error=exc, email=email, next=next)
    return ctx.redirect(_next(PREFIX + next), session)


@router.post("/logout")
async def logout(ctx: CtxDep) -> Response:
    await ctx.check_csrf()
    if ctx.session.user_id is not None and ctx.identity is not None:
        await console_auth.sign_out(ctx.runtime.db, ctx.session.user_id)
    return ctx.redirect("/login", fresh())


@router.get("/invite/{token}")
async def invitation_page(ctx: CtxDep, token: str) -> Response:
    email = await console_auth.invitation_email(ctx.runtime.db, token)
    return ctx.page("invite.html", email=email, token=token)


@router.post("/invite/{token}")
async def accept_invitation(
    ctx: CtxDep,
    token: str,
    password: Annotated[str, Form(max_length=1000)] = "",
    password_again: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    await ctx.check_csrf()
    email = await console_auth.invitation_email(ctx.runtime.db, token)
    if password != password_again:
        error = ctx.t("passwords_differ")
        return ctx.page("invite.html", http_status=400, email=email, token=token, message=error)
    try:
        user = await console_auth.accept_invitation(ctx.runtime.db, token, password)
    except ServiceError as exc:
        status = ctx.bridge.status_for(type(exc))
        return ctx.page("invite.html", http_status=status, email=email, token=token, error=exc)
    return ctx.redirect("/", fresh(user_id=user.id, epoch=user.session_epoch))


@router.get("/lang/{lang}")
async def switch_language(ctx: CtxDep, lang: str, next: str | None = None) -> Response:
    response = ctx.redirect(_next(next))
    if lang in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 24 * 3600, path=PREFIX, samesite="lax")
    return response
