"""What the API hands the web console (``wfrun.web``) when mounting it: its own renderers of
amounts and outputs, its error statuses, its event stream and its upload, so the console shows
exactly what the API answers (see :mod:`wfrun.web.bridge`)."""

from __future__ import annotations

from starlette.requests import Request

from wfrun.api import errors, live, wire
from wfrun.api.deps import links
from wfrun.api.routes.assets import receive_asset
from wfrun.runtime import Runtime
from wfrun.services.accounts import Principal
from wfrun.web.bridge import Bridge


def run_events(
    request: Request, runtime: Runtime, principal: Principal, run_id: str
) -> live.EventStream:
    """One run's ``run/events`` stream, resumed from the browser's ``Last-Event-ID``."""
    after = live.parse_last_event_id(request.headers.get("last-event-id"), None)
    key = principal.api_key_id
    runtime.live.open_stream(key, runtime.settings.live.max_streams_per_key)
    stream = live.StreamRequest(runtime, principal, run_id, after, links(request, runtime))
    return live.EventStream(live.events(stream), runtime, lambda: runtime.live.close_stream(key))


def console_bridge() -> Bridge:
    return Bridge(
        status_for=errors.status_for,
        links=links,
        run_info=wire.run_info,
        outputs=wire.outputs,
        market_item=wire.market_item,
        market_info=wire.market_info,
        quote_data=wire.quote_data,
        run_events=run_events,
        receive_asset=receive_asset,
    )
