"""A prompt's output files (``GET /view``), fetched as soon as ComfyUI announces them.

Protocol facts relied on (ComfyUI 0.3.64): an output node's ``executed`` event carries its UI
output (the same ``{"filename", "subfolder", "type"}`` refs its history entry lists) once its
files are written; a cached output node re-sends its ``executed``. So a file's download starts
when its event arrives, while the prompt goes on and the history is read (issue 11: the
fetch was one more round trip after ``executing(null)`` and the history), and the files of a
run download a few at a time rather than one after another.

The history entry stays the authority on what a run produced (``engine._collect``): a file it
lists that no event announced is fetched then, one an event announced that it does not list is
dropped, and a download that failed early is tried again the ordinary way (where a 404 drops
the history entry: ``engine._fetch``).
"""

from __future__ import annotations

import asyncio

from wfrun.engines.comfyui.client import ComfyRequestError
from wfrun.engines.comfyui.events import ComfyEvent, FileRef, parse_ui_output
from wfrun.engines.comfyui.session import InstanceSession

CONCURRENT_FETCHES = 4
"""Downloads of one run at once (a node may save hundreds of images)."""


class OutputFiles:
    """The downloads of one prompt's output files, started by its ``executed`` events."""

    def __init__(self, session: InstanceSession) -> None:
        self._session = session
        self._slots = asyncio.Semaphore(CONCURRENT_FETCHES)
        self._early: dict[FileRef, asyncio.Task[bytes | None]] = {}

    def on_event(self, event: ComfyEvent) -> None:
        """Starts downloading the files an ``executed`` event announces (once each)."""
        if event.type != "executed":
            return
        for ref in parse_ui_output(event.data.get("output")).files:
            if ref not in self._early:
                self._early[ref] = asyncio.create_task(self._early_fetch(ref))

    async def fetch(self, ref: FileRef) -> bytes:
        """The file's bytes: its early download's, else fetched now.

        Raises:
            ComfyRequestError: fetching it now failed.
        """
        early = self._early.pop(ref, None)
        data = None if early is None else await early
        if data is not None:
            return data
        async with self._slots:
            return await self._view(ref)

    def close(self) -> None:
        """Stops the downloads nobody took (the run ended another way, or history did not
        list them)."""
        early, self._early = self._early, {}
        for task in early.values():
            task.cancel()

    async def _early_fetch(self, ref: FileRef) -> bytes | None:
        try:
            async with self._slots:
                return await self._view(ref)
        except ComfyRequestError:
            return None  # fetched again, the ordinary way, if the history lists it

    async def _view(self, ref: FileRef) -> bytes:
        return await self._session.client.view(ref.filename, ref.subfolder, ref.type)
