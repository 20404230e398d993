"""The run list's cursor (open-api-v2.md §7): where a newest-first page of runs ended, and the
filters it was made for, as one opaque url-safe string.

A page continues strictly after its cursor's ``(created_at, run id)`` in the list's order
(``created_at`` then id, both descending), so runs submitted between two fetches land before
the first page and never shift a later one: no run is listed twice or skipped. The cursor is
base64url (no padding) of compact JSON ``{"v": 1, "at": <created_at in µs since the epoch>,
"id": <run id>, "w": <workflow_id or "">, "s": <status or "">}``; clients must treat it as
opaque. It is not signed: a forged one positions a list of the caller's own runs, nothing more.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from wfrun.errors import InvalidParameter

VERSION = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a run id may hold (``wfrun.ids``): a forged cursor's id never reaches the database
as text it would refuse (a NUL, a lone surrogate)."""
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class RunPosition:
    """The last run of a page, in the list's order: ``(created_at, run_id)``."""

    created_at: datetime
    run_id: str


@dataclass(frozen=True, slots=True)
class RunFilters:
    """What a run list is narrowed to (None: any)."""

    workflow_id: str | None
    status: str | None

    def describe(self) -> str:
        return f"workflow_id={self.workflow_id or '(any)'}, run_status={self.status or '(any)'}"


def encode(position: RunPosition, filters: RunFilters) -> str:
    document = {
        "v": VERSION,
        "at": (position.created_at - EPOCH) // MICROSECOND,
        "id": position.run_id,
        "w": filters.workflow_id or "",
        "s": filters.status or "",
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def start(page: int | None, cursor: str | None, filters: RunFilters) -> RunPosition | None:
    """Where a list continues: after ``cursor``'s position, or None (page numbers). A request
    names a page or a cursor, never both."""
    if cursor is None:
        return None
    if page is not None:
        raise InvalidParameter("page: send page or cursor, not both (a cursor is its own place)")
    return decode(cursor, filters)


def decode(cursor: str, filters: RunFilters) -> RunPosition:
    """The position ``cursor`` holds, when it was made for ``filters``; else
    :class:`InvalidParameter` saying precisely what is wrong."""
    document = _document(cursor)
    made_for = RunFilters(document["w"] or None, document["s"] or None)
    if made_for != filters:
        raise InvalidParameter(
            f"cursor: it was made for {made_for.describe()} but this request has "
            f"{filters.describe()}; send the filters of the request that returned it"
        )
    try:
        created_at = EPOCH + document["at"] * MICROSECOND
    except OverflowError:
        raise _garbled("its time is out of range") from None
    return RunPosition(created_at, document["id"])


def _document(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _garbled("it is not base64url JSON") from None
    if not isinstance(document, dict) or document.get("v") != VERSION:
        raise _garbled("unknown format")
    shape = {"at": int, "id": str, "w": str, "s": str}
    if any(type(document.get(key)) is not kind for key, kind in shape.items()):
        raise _garbled("a field is missing or of the wrong type")
    if not _RUN_ID.fullmatch(document["id"]):
        raise _garbled("its run id is not one")
    return document


def _garbled(why: str) -> InvalidParameter:
    return InvalidParameter(
        f"cursor: not a cursor of /workflow/run/list ({why}); pass data.next_cursor unchanged"
    )
