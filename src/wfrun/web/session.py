"""The console's session: a signed cookie (HMAC of the runtime's secret key, via
itsdangerous) holding the signed-in user or API key id and a CSRF token bound to it.

The cookie is HttpOnly, SameSite=Lax and Secure when the request came over https. Every form
POST carries the token (a hidden ``csrf_token`` field, or the ``X-CSRF-Token`` header for the
page's own fetches) and is refused with 403 when it does not match the session's.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "wfrun_console"
MAX_AGE = 7 * 24 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    csrf: str
    user_id: str | None = None
    key_id: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None or self.key_id is not None


class Sessions:
    """Reads and writes the session cookie."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="wfrun-console-session")

    def read(self, request: Request) -> Session:
        """The request's session; a fresh anonymous one (new CSRF token) when it has none or
        its cookie is forged or expired."""
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data = self._serializer.loads(raw, max_age=MAX_AGE)
            except BadSignature:
                data = None
            if isinstance(data, dict) and isinstance(data.get("c"), str):
                return Session(data["c"], data.get("u"), data.get("k"))
        return Session(secrets.token_urlsafe(24))

    def write(self, request: Request, response: Response, session: Session) -> None:
        value = self._serializer.dumps(
            {"c": session.csrf, "u": session.user_id, "k": session.key_id}
        )
        response.set_cookie(
            COOKIE,
            value,
            max_age=MAX_AGE,
            path="/console",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )


def fresh(*, user_id: str | None = None, key_id: str | None = None) -> Session:
    """A new session (new CSRF token) for a sign-in or a sign-out."""
    return Session(secrets.token_urlsafe(24), user_id, key_id)


def csrf_matches(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())
