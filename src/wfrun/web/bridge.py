"""What the console borrows from the API, handed over by the API's factory.

``wfrun.api`` mounts the console, so the console cannot import the API back (the import
contracts forbid cycles between packages). The API passes these functions instead: the
console then renders amounts, outputs and errors exactly as the API does, and its live page
reads the same event stream code (``api/live.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from wfrun.db.assets import Asset
from wfrun.db.runs import Run
from wfrun.db.workflows import MarketItem, WorkflowRevision
from wfrun.domain.pricing import PriceTable, Quote
from wfrun.errors import ServiceError
from wfrun.runtime import Runtime
from wfrun.services.accounts import Principal
from wfrun.storage.links import Links


@dataclass(frozen=True)
class Bridge:
    status_for: Callable[[type[ServiceError]], int]
    """The HTTP status of an error class (``api/errors.py``)."""
    links: Callable[[Request, Runtime], Links]
    run_info: Callable[[Run, Links], dict[str, Any]]
    """A run's ``run/info`` data (amounts as 8-decimal strings)."""
    outputs: Callable[[Run, Links], dict[str, Any]]
    market_item: Callable[[MarketItem], dict[str, Any]]
    """A market card's data (``quote_amount`` as the API's string)."""
    market_info: Callable[[WorkflowRevision], dict[str, Any]]
    quote_data: Callable[[str, str, PriceTable, Quote], dict[str, Any]]
    run_events: Callable[[Request, Runtime, Principal, str], Response]
    """The ``run/events`` SSE response of one run of the principal."""
    receive_asset: Callable[[Request, Runtime, Principal], Awaitable[Asset]]
    """Stream a multipart ``file`` upload into an asset of the principal."""
