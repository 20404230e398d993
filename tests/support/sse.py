"""A small Server-Sent Events reader written from the WHATWG spec (not wfrun's code): fields
``id``, ``event``, ``data`` (joined by newlines), comments (lines starting with ``:``), an
event dispatched at each blank line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.waiting import DEADLINE


@dataclass(frozen=True)
class Event:
    id: int
    event: str
    data: Any


@dataclass(frozen=True)
class Comment:
    text: str


class Parser:
    """Feed it lines; it answers each with the event or comment that line completes."""

    def __init__(self) -> None:
        self._fields: dict[str, list[str]] = {}

    def feed(self, raw: str) -> Event | Comment | None:
        line = raw.rstrip("\r\n")
        if line.startswith(":"):
            return Comment(line[1:].strip())
        if line:
            name, _, value = line.partition(":")
            self._fields.setdefault(name, []).append(value.removeprefix(" "))
            return None
        fields, self._fields = self._fields, {}
        if "data" not in fields:
            return None
        name = fields.get("event", ["message"])[-1]
        return Event(int(fields["id"][-1]), name, json.loads("\n".join(fields["data"])))


async def parse(lines: AsyncIterator[str]) -> AsyncIterator[Event | Comment]:
    parser = Parser()
    async for line in lines:
        item = parser.feed(line)
        if item is not None:
            yield item


def parse_sync(lines: Iterator[str]) -> Iterator[Event | Comment]:
    parser = Parser()
    for line in lines:
        item = parser.feed(line)
        if item is not None:
            yield item


class Stream:
    """An open event stream: take events one by one, with a deadline."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._items = parse(response.aiter_lines())
        self.comments: list[str] = []

    async def next(self, timeout: float = DEADLINE) -> Event:
        while True:
            item = await asyncio.wait_for(anext(self._items), timeout)
            if isinstance(item, Event):
                return item
            self.comments.append(item.text)

    async def next_comment(self, timeout: float = DEADLINE) -> str:
        item = await asyncio.wait_for(anext(self._items), timeout)
        assert isinstance(item, Comment), item
        return item.text

    async def until_done(self) -> list[Event]:
        taken = []
        while True:
            event = await self.next()
            taken.append(event)
            if event.event == "done":
                return taken

    async def rest(self) -> list[Event]:
        """Every event until the server ends the stream."""
        taken: list[Event] = []
        async for item in self._items:
            if isinstance(item, Event):
                taken.append(item)
        return taken


@asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    run_id: str | None = None,
    last_event_id: int | None = None,
    query_id: str | None = None,
) -> AsyncIterator[Stream]:
    params = {} if run_id is None else {"run_order_id": run_id}
    if query_id is not None:
        params["last_event_id"] = query_id
    extra = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    async with http.stream(
        "GET", "/workflow/run/events", params=params, headers=headers | extra
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)
