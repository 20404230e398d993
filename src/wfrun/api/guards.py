"""ASGI middleware at the edge of the API, outside routing, parsing and authentication.

* :class:`BodyLimit` refuses a request body over its limit with a 413 in the envelope: up front
  from ``Content-Length`` (the app never runs, nothing is read), or as soon as the bytes that
  stream in cross it. Uploads have ``assets.max_upload_bytes`` (plus multipart framing), every
  other endpoint ``api.max_json_bytes``.
* :class:`CatchAll` answers a bug's exception with the 500 envelope and logs it once. Without
  it, Starlette answers and re-raises, and the server then drops the connection without a word
  (no ``Connection: close``), so the client's next request on it fails as well.

After either answer the connection stays usable: the server discards whatever of the request
body is still unread, and a client that reads only once it has sent everything (most do) gets
the answer rather than a reset connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wfrun import errors as e
from wfrun.api.access_log import log_unhandled
from wfrun.api.errors import error_response, internal_error_response


@dataclass(frozen=True)
class Limit:
    """How many body bytes a request may send, and the error that refuses more."""

    max_bytes: int
    error: type[e.TooLarge] = e.TooLarge
    hint: str = ""
    """Appended to the refusal's detail: what to do instead."""


LimitFor = Callable[[Scope], Limit]
"""Chooses the limit of a request from its scope (method and path); read on every request, so
changed settings apply at once."""


class _Exceeded(Exception):
    """Raised into the app from ``receive`` when it asks for bytes past the limit."""


def _declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def _too_large(limit: Limit, what: str) -> e.TooLarge:
    hint = f" ({limit.hint})" if limit.hint else ""
    return limit.error(f"{what}; at most {limit.max_bytes} bytes are accepted here{hint}")


async def _refuse(error: e.ServiceError, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(error)(scope, receive, send)


class _Metered:
    """One request's ``receive``/``send``. The app is handed at most the limit's bytes; when it
    asks for more, ``receive`` raises into it, and whatever it answers to that broken body is
    kept from the client (the middleware answers 413 instead). An app that refuses the body
    first, within the bytes it was given (an upload's own file limit), answers itself."""

    def __init__(self, receive: Receive, send: Send, limit: Limit) -> None:
        self._receive, self._send, self.limit = receive, send, limit
        self.seen = 0
        self.over = False
        self.refused = False
        self.started = False

    async def receive(self) -> Message:
        if self.over:
            self.refused = True
            raise _Exceeded
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        body: bytes = message.get("body", b"")
        room = self.limit.max_bytes - self.seen
        self.seen += len(body)
        if len(body) <= room:
            return message
        self.over = True
        return {"type": "http.request", "body": body[:room], "more_body": True}

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class BodyLimit:
    def __init__(self, app: ASGIApp, limit_for: LimitFor) -> None:
        self.app, self.limit_for = app, limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _declared_length(scope)
        if declared is not None and declared > limit.max_bytes:
            error = _too_large(limit, f"the body is {declared} bytes")
            await _refuse(error, scope, receive, send)
            return
        metered = _Metered(receive, send, limit)
        try:
            await self.app(scope, metered.receive, metered.send)
        except Exception:
            if not metered.refused:
                raise
        if metered.refused:
            if metered.started:  # too late for a 413: end the connection instead
                raise _Exceeded
            error = _too_large(limit, f"the body is over {limit.max_bytes} bytes")
            await _refuse(error, scope, receive, send)


class CatchAll:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # half a response is out: only closing the connection tells the truth
                raise
            log_unhandled(scope, exc)
            await internal_error_response()(scope, receive, send)
