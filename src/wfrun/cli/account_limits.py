"""``wfrun accounts limits``: one account's request rate and run quotas, over the server's
``limits.*`` defaults. API processes pick a change up within
``limits.overrides_refresh_seconds``; the claim of the running-run cap reads it at once."""

from __future__ import annotations

from typing import Any

import click

from wfrun.cli.common import json_option, run_db, settings_of
from wfrun.cli.output import emit
from wfrun.db.database import Database


def _text(limits: dict[str, Any]) -> str:
    own = set(limits["overridden"])
    lines = []
    for name in ("requests_per_second", "burst", "max_queued_runs", "max_running_runs"):
        value = limits[name]
        shown = "unlimited" if value is None else f"{value:g}"
        if name == "burst" and value is None and limits["requests_per_second"] is not None:
            shown = "one second's requests"
        lines.append(f"{name}: {shown}{' (override)' if name in own else ''}")
    return "\n".join(lines)


@click.command("limits")
@click.argument("account_id")
@click.option("--requests-per-second", type=click.FloatRange(min=0), help="Per API key.")
@click.option("--burst", type=click.IntRange(min=1), help="Requests at once after idling.")
@click.option("--max-queued-runs", type=click.IntRange(min=0), help="Waiting runs allowed.")
@click.option("--max-running-runs", type=click.IntRange(min=1), help="Runs running at once.")
@click.option("--clear", is_flag=True, help="Drop the account's overrides (before the others).")
@json_option
@click.pass_context
def limits_command(
    ctx: click.Context, /, account_id: str, clear: bool, as_json: bool, **given: Any
) -> None:
    """Show ACCOUNT_ID's limits in force, or override some (the rest keep the server's
    defaults; --requests-per-second 0 turns its rate limit off)."""
    from wfrun.services import limits  # only this command reads or writes overrides

    settings = settings_of(ctx).limits
    changes = {name: value for name, value in given.items() if value is not None}

    async def work(db: Database) -> dict[str, Any]:
        if changes or clear:
            now = await limits.set_overrides(db, settings, account_id, changes, clear=clear)
        else:
            now = await limits.show(db, settings, account_id)
        return {"account_id": account_id} | limits.as_dict(now)

    shown = run_db(ctx, work)
    emit(shown, as_json=as_json, text=_text(shown))
