"""``wfrun config show``: the effective settings, secrets masked, and where each came from."""

from __future__ import annotations

import json
import re
from typing import Any

import click
from pydantic import BaseModel

from wfrun.cli.common import json_option, settings_of
from wfrun.config import Settings
from wfrun.config_sources import mask_of

MASK = "********"
WIDTH = 60  # the source column starts here unless a value is longer


@click.group("config")
def config_group() -> None:
    """Inspect the settings (WFRUN_* variables, the WFRUN_CONFIG file, defaults)."""


@config_group.command("show")
@json_option
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Every setting's value (secrets masked) and its source: default, env VAR, config file
    or command line."""
    settings = settings_of(ctx)
    rows = effective(settings)
    if as_json:
        config_file = settings.sources.config_file
        document = {"config_file": str(config_file) if config_file else None, "settings": rows}
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
        return
    lines = {
        key: f"{key} = {json.dumps(row['value'], ensure_ascii=False)}" for key, row in rows.items()
    }
    width = min(WIDTH, max(len(line) for line in lines.values()))
    for key, line in lines.items():
        click.echo(f"{line.ljust(width)}  # {rows[key]['source']}")


def effective(settings: Settings) -> dict[str, dict[str, Any]]:
    """Dotted setting path → ``{"value": JSON value (masked), "source": where from}``."""
    rows: dict[str, dict[str, Any]] = {}
    for path, value in _leaves(settings, settings.model_dump(mode="json"), ""):
        rows[path] = {"value": value, "source": settings.sources.origin(path)}
    return rows


def _leaves(model: BaseModel, dumped: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name in type(model).model_fields:
        value, dumped_value = getattr(model, name), dumped[name]
        if isinstance(value, BaseModel):
            found += _leaves(value, dumped_value, f"{prefix}{name}.")
            continue
        mask = mask_of(type(model), name)
        if mask == "all" and dumped_value:
            dumped_value = MASK
        elif mask == "password" and isinstance(dumped_value, str):
            dumped_value = mask_url_password(dumped_value)
        found.append((prefix + name, dumped_value))
    return found


def mask_url_password(url: str) -> str:
    """``scheme://user:secret@host/db`` → ``scheme://user:********@host/db`` (the secret may
    itself hold ``@``: the host follows the last one before the path)."""
    return re.sub(r"^([^:/]+://[^:@/]*:)[^/]*@", rf"\g<1>{MASK}@", url)
