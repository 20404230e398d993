"""Per-request console state: runtime, session, who is signed in, language; and the page
renderer (Jinja2 templates shipped in the package, autoescaped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from wfrun.domain.money import format_amount
from wfrun.errors import Forbidden, NotFound, ServiceError, Unauthenticated
from wfrun.runtime import Runtime, ensure_secret_key
from wfrun.services import console_auth
from wfrun.services.console_auth import Identity
from wfrun.web import i18n
from wfrun.web.bridge import Bridge
from wfrun.web.session import CSRF_FIELD, CSRF_HEADER, Session, Sessions, csrf_matches

PREFIX = "/console"
SECURITY_HEADERS = {
    # Scripts, styles and fonts only from wfrun itself; media also from object storage
    # (S3 presigned links live on the bucket's own host); no framing, forms post only here.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data: http: https:; "
        "media-src 'self' blob: http: https:; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SignInRequired(Exception):
    """A page needs a signed-in user: the console answers with the sign-in page."""


def _money(value: int | None) -> str:
    return "" if value is None else format_amount(value)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _query(values: dict[str, Any], **changes: Any) -> str:
    """A link's query string: ``values`` with ``changes``, empty ones left out, encoded."""
    merged = {**values, **changes}
    return "?" + urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def build_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("wfrun.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = _money
    env.filters["when"] = _when
    env.globals["query"] = _query
    return env


@dataclass
class Console:
    """What the mounted console keeps for its whole life."""

    bridge: Bridge
    env: Environment
    sessions: Sessions | None = None

    def sessions_for(self, runtime: Runtime) -> Sessions:
        if self.sessions is None:
            public = str(runtime.settings.public_base_url or "")
            self.sessions = Sessions(
                ensure_secret_key(runtime.settings), secure=public.startswith("https://")
            )
        return self.sessions


@dataclass
class Ctx:
    request: Request
    runtime: Runtime
    console: Console
    session: Session
    identity: Identity | None
    lang: str

    @property
    def bridge(self) -> Bridge:
        return self.console.bridge

    def t(self, key: str, **values: Any) -> str:
        return i18n.text(self.lang, key, **values)

    def user(self) -> Identity:
        if self.identity is None:
            raise SignInRequired
        return self.identity

    def operator(self) -> Identity:
        """The signed-in operator; anyone else sees a plain 404 (the pages do not exist)."""
        identity = self.user()
        if not identity.is_operator:
            raise NotFound(f"no console page at {self.request.url.path}")
        return identity

    async def check_csrf(self, *, header_only: bool = False) -> None:
        """Refuse (403) a POST without the session's token: the ``X-CSRF-Token`` header, or
        the form's ``csrf_token`` field (not read when ``header_only``: a streamed body)."""
        sent = self.request.headers.get(CSRF_HEADER)
        if sent is None and not header_only:
            form = await self.request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not csrf_matches(self.session, sent):
            raise Forbidden(f"{CSRF_FIELD}: missing or wrong; reload the page and try again")

    def page(self, template: str, http_status: int = 200, **values: Any) -> HTMLResponse:
        body = self.console.env.get_template(template).render(
            ctx=self, t=self.t, me=self.identity, csrf=self.session.csrf, prefix=PREFIX, **values
        )
        response = HTMLResponse(body, status_code=http_status, headers=SECURITY_HEADERS)
        self.keep_session(response)
        return response

    def keep_session(self, response: Response, session: Session | None = None) -> None:
        self.console.sessions_for(self.runtime).write(
            self.request, response, session or self.session
        )

    def redirect(self, path: str, session: Session | None = None) -> RedirectResponse:
        response = RedirectResponse(PREFIX + path, status_code=303)
        self.keep_session(response, session)
        return response

    def error_page(self, exc: ServiceError) -> HTMLResponse:
        status = self.bridge.status_for(type(exc))
        return self.page("error.html", http_status=status, error=exc, status_code=status)


async def build_ctx(request: Request) -> Ctx:
    runtime: Runtime = request.app.state.runtime
    console: Console = request.app.state.console
    session = console.sessions_for(runtime).read(request)
    return Ctx(
        request,
        runtime,
        console,
        session,
        await _identity(runtime, session),
        i18n.pick(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language")),
    )


async def _identity(runtime: Runtime, session: Session) -> Identity | None:
    try:
        if session.user_id is not None:
            return await console_auth.user_identity(runtime.db, session.user_id, session.epoch)
        if session.key_id is not None:
            return await console_auth.key_identity(runtime.db, session.key_id)
    except Unauthenticated:
        return None
    return None
