"""``wfrun webhooks``: an operator manages an account's webhook endpoints and reads or resends
its deliveries (the same services and wire shapes as ``/webhooks/*``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from wfrun.api import webhook_wire
from wfrun.cli.common import json_option, run_async
from wfrun.cli.output import emit
from wfrun.services import webhook_log, webhooks
from wfrun.services.webhooks import EndpointChange

if TYPE_CHECKING:
    from wfrun.runtime import Runtime

_EVENT = click.option(
    "--event", "events", multiple=True, help="An event type to send (repeat); default: all."
)


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook endpoints of an account, and their delivery log."""


def _endpoint_text(data: dict[str, Any]) -> str:
    state = "enabled" if data["enabled"] else f"disabled ({data['disabled_reason']})"
    line = f"{data['endpoint_id']} {data['url']} {','.join(data['events'])} {state}"
    return line + (f"\nsecret (shown once): {data['secret']}" if "secret" in data else "")


@webhooks_group.command("list")
@click.argument("account_id")
@json_option
@click.pass_context
def list_(ctx: click.Context, account_id: str, as_json: bool) -> None:
    """List ACCOUNT_ID's endpoints (secrets are never shown again)."""

    async def work(rt: Runtime) -> list[dict[str, Any]]:
        return [webhook_wire.endpoint(e) for e in await webhooks.list_all(rt.db, account_id)]

    items = run_async(ctx, work)
    emit(items, as_json=as_json, text="\n".join(map(_endpoint_text, items)) or "(none)")


@webhooks_group.command("add")
@click.argument("account_id")
@click.argument("url")
@_EVENT
@click.option("--description", default="", help="A note for the owner.")
@json_option
@click.pass_context
def add(
    ctx: click.Context,
    account_id: str,
    url: str,
    events: tuple[str, ...],
    description: str,
    as_json: bool,
) -> None:
    """Add an endpoint URL for ACCOUNT_ID; prints its secret once."""
    change = EndpointChange(url=url, events=list(events) or None, description=description)

    async def work(rt: Runtime) -> dict[str, Any]:
        made, secret = await webhooks.create(
            rt.db, rt.webhook_box, rt.webhook_policy, account_id, change
        )
        return webhook_wire.endpoint(made, secret=secret)

    data = run_async(ctx, work)
    emit(data, as_json=as_json, text=_endpoint_text(data))


@webhooks_group.command("update")
@click.argument("account_id")
@click.argument("endpoint_id")
@click.option("--url", default=None, help="A new URL.")
@_EVENT
@click.option("--description", default=None, help="A new note.")
@click.option("--disable", is_flag=True, help="Stop deliveries (default: enable).")
@json_option
@click.pass_context
def update(
    ctx: click.Context,
    account_id: str,
    endpoint_id: str,
    url: str | None,
    events: tuple[str, ...],
    description: str | None,
    disable: bool,
    as_json: bool,
) -> None:
    """Change an endpoint; without --disable it is (re-)enabled."""
    change = EndpointChange(
        url=url, events=list(events) or None, description=description, enabled=not disable
    )

    async def work(rt: Runtime) -> dict[str, Any]:
        changed = await webhooks.update(rt.db, rt.webhook_policy, account_id, endpoint_id, change)
        return webhook_wire.endpoint(changed)

    data = run_async(ctx, work)
    emit(data, as_json=as_json, text=_endpoint_text(data))


@webhooks_group.command("delete")
@click.argument("account_id")
@click.argument("endpoint_id")
@json_option
@click.pass_context
def delete(ctx: click.Context, account_id: str, endpoint_id: str, as_json: bool) -> None:
    """Delete an endpoint (its delivery log stays)."""

    async def work(rt: Runtime) -> dict[str, Any]:
        return webhook_wire.endpoint(await webhooks.delete(rt.db, account_id, endpoint_id))

    data = run_async(ctx, work)
    emit(data, as_json=as_json, text=f"{endpoint_id} deleted")


@webhooks_group.command("rotate-secret")
@click.argument("account_id")
@click.argument("endpoint_id")
@json_option
@click.pass_context
def rotate_secret(ctx: click.Context, account_id: str, endpoint_id: str, as_json: bool) -> None:
    """A new secret (printed once); the old one also signs for 24 h."""

    async def work(rt: Runtime) -> dict[str, Any]:
        rotated, secret = await webhooks.rotate(rt.db, rt.webhook_box, account_id, endpoint_id)
        return webhook_wire.endpoint(rotated, secret=secret)

    data = run_async(ctx, work)
    emit(data, as_json=as_json, text=_endpoint_text(data))


def _delivery_text(data: dict[str, Any]) -> str:
    return (
        f"{data['delivery_id']} {data['event_type']} {data['run_order_id']} {data['status']} "
        f"attempts={data['attempt_count']} http={data['http_status']} error={data['error']}"
    )


@webhooks_group.command("deliveries")
@click.argument("account_id")
@click.option("--endpoint", "endpoint_id", default=None, help="Only this endpoint's.")
@click.option("--run", "run_id", default=None, help="Only this run's.")
@click.option("--page", "page_no", type=click.IntRange(min=1), default=1)
@click.option("--page-size", type=click.IntRange(1, 100), default=20)
@json_option
@click.pass_context
def deliveries(
    ctx: click.Context,
    account_id: str,
    endpoint_id: str | None,
    run_id: str | None,
    page_no: int,
    page_size: int,
    as_json: bool,
) -> None:
    """ACCOUNT_ID's deliveries, newest first, with every attempt."""

    async def work(rt: Runtime) -> dict[str, Any]:
        items, total = await webhook_log.page(
            rt.db,
            account_id,
            endpoint_id=endpoint_id,
            run_id=run_id,
            page_no=page_no,
            size=page_size,
        )
        return {"items": [webhook_wire.delivery(i) for i in items], "total": total}

    data = run_async(ctx, work)
    emit(data, as_json=as_json, text="\n".join(map(_delivery_text, data["items"])) or "(none)")


@webhooks_group.command("resend")
@click.argument("account_id")
@click.argument("delivery_id")
@json_option
@click.pass_context
def resend(ctx: click.Context, account_id: str, delivery_id: str, as_json: bool) -> None:
    """Send a delivery again (same webhook-id), as soon as a worker looks."""

    async def work(rt: Runtime) -> dict[str, Any]:
        return webhook_wire.delivery(await webhook_log.resend(rt.db, account_id, delivery_id))

    data = run_async(ctx, work)
    emit(data, as_json=as_json, text=_delivery_text(data))
