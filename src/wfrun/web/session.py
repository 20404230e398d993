"""The console's session: a signed cookie (HMAC of the runtime's secret key, via
itsdangerous) holding the signed-in user (with its session epoch) or API key id, the time of
sign-in and a CSRF token bound to it.

A session lasts :data:`MAX_AGE` from sign-in, however active (the cookie is rewritten on each
answer but the sign-in time is not). The user's session epoch (checked on each request by
``services.console_auth``) ends every older cookie at sign-out or a password change.

The cookie is HttpOnly, SameSite=Lax and Secure when the request came over https or the
public base URL is https (behind a TLS proxy). Every form
POST carries the token (a hidden ``csrf_token`` field, or the ``X-CSRF-Token`` header for the
page's own fetches) and is refused with 403 when it does not match the session's.
"""

from __future__ import annotations

import hmac
import secrets
import time
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
    epoch: int = 0
    """The user's session epoch at sign-in."""
    issued_at: int = 0
    """Sign-in time, in seconds since the epoch; the session ends :data:`MAX_AGE` later."""

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None or self.key_id is not None


class Sessions:
    """Reads and writes the session cookie."""

    def __init__(self, secret_key: str, *, secure: bool = False) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="wfrun-console-session")
        self._secure = secure

    def read(self, request: Request, now: float | None = None) -> Session:
        """The request's session; a fresh anonymous one (new CSRF token) when it has none, or
        its cookie is forged, or it was signed in more than :data:`MAX_AGE` ago."""
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data = self._serializer.loads(raw, max_age=MAX_AGE)
            except BadSignature:
                data = None
            if isinstance(data, dict) and isinstance(data.get("c"), str):
                session = Session(
                    data["c"],
                    data.get("u"),
                    data.get("k"),
                    int(data.get("e", 0)),
                    int(data.get("i", 0)),
                )
                if not session.signed_in or session.issued_at + MAX_AGE > (now or time.time()):
                    return session
        return Session(secrets.token_urlsafe(24))

    def dumps(self, session: Session) -> str:
        """The cookie's value for a session."""
        return self._serializer.dumps(
            {
                "c": session.csrf,
                "u": session.user_id,
                "k": session.key_id,
                "e": session.epoch,
                "i": session.issued_at,
            }
        )

    def write(self, request: Request, response: Response, session: Session) -> None:
        left = MAX_AGE
        if session.signed_in:
            left = max(0, int(session.issued_at + MAX_AGE - time.time()))
        response.set_cookie(
            COOKIE,
            self.dumps(session),
            max_age=left,
            path="/console",
            httponly=True,
            samesite="lax",
            secure=self._secure or request.url.scheme == "https",
        )


def fresh(*, user_id: str | None = None, key_id: str | None = None, epoch: int = 0) -> Session:
    """A new session (new CSRF token, signed in now) for a sign-in or a sign-out."""
    return Session(secrets.token_urlsafe(24), user_id, key_id, epoch, int(time.time()))


def csrf_matches(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())
