"""The ``wfrun`` group's machinery: commands imported only when invoked, global options in any
position, and errors as one line (or one JSON document under ``--json``).

Commands are registered by name and ``module:attribute`` (:class:`Lazy`); ``wfrun --help``
lists them from the registry's one-line help, so it imports none of them (click's "lazily
loading subcommands" pattern). Only this module and click are imported to print it.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from wfrun.errors import ConfigError

GLOBAL_FLAGS = frozenset({"--json"})
GLOBAL_VALUED = frozenset({"--data-dir"})
"""Options of the ``wfrun`` group accepted anywhere on the line (before ``--``)."""
JSON_KEY = "wfrun.json"
"""``ctx.meta`` key: whether ``--json`` was given."""


@dataclass(frozen=True)
class Lazy:
    """A command of the group: its name, ``module:attribute`` and one-line help."""

    name: str
    target: str
    help: str


class CommandError(click.ClickException):
    """A failure to report as ``error: CODE: detail`` (or ``{"error": {...}}`` under
    ``--json``) with ``exit_code`` (1: failed; 2: refused, or a usage problem)."""

    def __init__(self, code: str, detail: str, *, exit_code: int = 1) -> None:
        super().__init__(detail)
        self.code = code
        self.status = exit_code


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def __init__(self, *args: Any, lazy: Sequence[Lazy] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = {entry.name: entry for entry in lazy}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.lazy.get(cmd_name)
        if entry is not None and cmd_name not in self.commands:
            module, _, attribute = entry.target.partition(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            loaded = self.commands.get(name)
            if loaded is None:
                rows.append((name, self.lazy[name].help))
            elif not loaded.hidden:
                rows.append((name, loaded.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class RootGroup(LazyGroup):
    """The ``wfrun`` group: hoists the global options, and reports every error itself."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = hoist(list(sys.argv[1:] if args is None else args))
        as_json = bool(GLOBAL_FLAGS.intersection(_before_end(argv)))
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            report(exc, as_json=as_json)
            code = exc.status if isinstance(exc, CommandError) else exc.exit_code
        except ConfigError as exc:  # a bad setting or start-up: one line, nothing created
            report(CommandError("CONFIG_ERROR", exc.message, exit_code=2), as_json=as_json)
            code = 2
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = 1
        except Exception as exc:  # noqa: BLE001 - a bug: one line (JSON under --json) + traceback
            report(CommandError("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}"), as_json=as_json)
            traceback.print_exc()
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def _before_end(argv: list[str]) -> list[str]:
    return argv[: argv.index("--")] if "--" in argv else argv


def hoist(argv: list[str]) -> list[str]:
    """``argv`` with the global options moved to the front (so ``wfrun accounts list --json``
    means ``wfrun --json accounts list``); nothing after ``--`` moves."""
    front: list[str] = []
    rest: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            rest += [token, *tokens]
        elif token in GLOBAL_FLAGS or ("=" in token and token.split("=")[0] in GLOBAL_VALUED):
            front.append(token)
        elif token in GLOBAL_VALUED:
            front += [token, *[value for value in [next(tokens, None)] if value is not None]]
        else:
            rest.append(token)
    return front + rest


def error_code(exc: click.ClickException) -> str:
    if isinstance(exc, CommandError):
        return exc.code
    if isinstance(exc, click.BadParameter):
        return "INVALID_PARAMETER"
    if isinstance(exc, click.UsageError):
        return "USAGE_ERROR"
    return "ERROR"


def report(exc: click.ClickException, *, as_json: bool) -> None:
    """Print ``exc``: one JSON document on stdout under ``--json``, else text on stderr."""
    if as_json:
        error = {"code": error_code(exc), "detail": exc.format_message()}
        click.echo(json.dumps({"error": error}, ensure_ascii=False))
    elif isinstance(exc, CommandError) and exc.code == "CONFIG_ERROR":
        click.echo(f"error: {exc.format_message()}", err=True)
    elif isinstance(exc, CommandError):
        click.echo(f"error: {exc.code}: {exc.format_message()}", err=True)
    else:
        exc.show()


def fail(code: str, detail: str, *, exit_code: int = 1) -> NoReturn:
    raise CommandError(code, detail, exit_code=exit_code)
