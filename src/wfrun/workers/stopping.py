"""How a worker is told to stop: the first SIGTERM/SIGINT asks it to drain, the second to hand
its unfinished runs back at once (issue 11: a worker that went on claiming after SIGTERM and
ignored a second one)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class StopSignals:
    """``stop``: claim nothing more and let the runs in flight finish (up to the drain time);
    ``hurry``: hand the unfinished runs back to the queue now."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    hurry: asyncio.Event = field(default_factory=asyncio.Event)

    def request(self) -> None:
        """One stop request (a signal): the first drains, any later one hurries."""
        if not self.stop.is_set():
            log.info("stop requested: claiming nothing more, draining the runs in flight")
            self.stop.set()
        elif not self.hurry.is_set():
            log.warning("second stop request: handing the runs in flight back now")
            self.hurry.set()

    async def follow(self, stop: asyncio.Event) -> None:
        """Turn another stop event (e.g. the API's lifespan ending) into a stop request."""
        await stop.wait()
        if not self.stop.is_set():
            self.request()
