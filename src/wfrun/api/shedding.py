"""Load shedding at the edge: a flood beyond what the process can work through is answered
503 ``SERVICE_UNAVAILABLE`` (overloaded) with ``Retry-After`` at once, instead of queueing
requests for seconds behind the database pool.

An API process works on at most ``limits.max_concurrent_requests`` API requests at once; more
wait in line (first come, first served) for at most ``limits.max_wait_seconds``, and at most
``limits.max_waiting_requests`` of them wait. A request refused here never reached a route:
nothing was done, so nothing accepted is lost, and retrying it is safe. Event streams and
submits with ``Prefer: wait=N`` (N > 0) mostly wait for runs, not the database: they are not
counted (any other request with a ``Prefer`` header is).
Settings are read per request.
"""

from __future__ import annotations

import asyncio
from collections import deque

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from wfrun.api import prefer
from wfrun.api.deps import API_PREFIX
from wfrun.api.errors import error_response
from wfrun.config import LimitsSettings
from wfrun.errors import InvalidParameter, Overloaded

RETRY_AFTER = 1
EXEMPT_PATHS = frozenset({f"{API_PREFIX}/workflow/run/events"})
WAITING_SUBMITS = frozenset(
    {f"{API_PREFIX}/workflow/run/submit", f"{API_PREFIX}/model-runs/videos"}
)
"""The submits that honour ``Prefer: wait=N`` (``api.prefer``)."""


def _counted(scope: Scope) -> bool:
    if scope["type"] != "http" or not str(scope.get("path", "")).startswith(API_PREFIX + "/"):
        return False
    if scope["path"] in EXEMPT_PATHS:
        return False
    if scope["path"] not in WAITING_SUBMITS or scope.get("method") != "POST":
        return True
    try:  # only a submit that may wait (wait=N, N > 0) is exempt; a bad header is counted
        return not prefer.wait_seconds(Headers(scope=scope).get(prefer.HEADER))
    except InvalidParameter:
        return True


class Shedding:
    """ASGI middleware bounding the API requests a process works on and waits for."""

    def __init__(self, app: ASGIApp, settings: LimitsSettings) -> None:
        self.app = app
        self.settings = settings
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.settings.max_concurrent_requests is None or not _counted(scope):
            await self.app(scope, receive, send)
            return
        refusal = await self._enter(self.settings.max_concurrent_requests)
        if refusal is not None:
            error = Overloaded(refusal, retry_after=RETRY_AFTER)
            await error_response(error, retry_after=RETRY_AFTER)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._leave()

    async def _enter(self, cap: int) -> str | None:
        """Take a turn, or say why not."""
        if self.active < cap and not self._waiters:
            self.active += 1
            return None
        if len(self._waiters) >= self.settings.max_waiting_requests:
            return f"the server is overloaded: {self.active} requests in progress and " + (
                f"{len(self._waiters)} waiting on this process; retry shortly"
            )
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            await asyncio.wait({turn}, timeout=self.settings.max_wait_seconds)
        except BaseException:
            self._give_up(turn)
            raise
        if turn.done():
            return None
        self._waiters.remove(turn)
        return (
            f"the server is overloaded: no turn came within {self.settings.max_wait_seconds:g} s "
            f"({self.active} requests in progress on this process); retry shortly"
        )

    def _give_up(self, turn: asyncio.Future[None]) -> None:
        """A waiter cancelled: hand on a turn it was given, else leave the line."""
        if turn.done():
            self._leave()
        else:
            self._waiters.remove(turn)

    def _leave(self) -> None:
        """Hand the turn to the first in line, else free it."""
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.active -= 1
