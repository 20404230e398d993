"""``wfrun-client``: the SDK on the command line (argparse: no dependency beyond the SDK's).

    wfrun-client run WORKFLOW -i key=value -f image=./in.png --wait --out ./outputs
    wfrun-client runs list|show|cancel ; wfrun-client workflows list|show
    wfrun-client balance ; wfrun-client quote WORKFLOW -i …

Key and base URL: ``--api-key``/``--base-url`` or ``WFRUN_API_KEY``/``WFRUN_BASE_URL``.
``--json`` prints one JSON document on stdout (progress, if any, goes to stderr). Exit codes:
0 done, 1 the API refused or could not be reached, 2 bad usage, 3 the run ended but did not
succeed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wfrun_client import _cli_commands as commands
from wfrun_client._sync import Client
from wfrun_client.errors import APIError, ConnectionFailed, WaitTimeout

Handler = Callable[[Client, argparse.Namespace], int]


def _common() -> argparse.ArgumentParser:
    """Options accepted before or after the command (``SUPPRESS`` keeps either spelling)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-url", default=argparse.SUPPRESS, help="server root or API URL")
    common.add_argument("--api-key", default=argparse.SUPPRESS, help="API key (wfk_…)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    return common


def _inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", help="workflow id (wf_…)")
    parser.add_argument(
        "-i", "--input", action="append", default=[], metavar="KEY=VALUE",
        help="an input; VALUE is parsed as JSON when it is JSON, else taken as text",
    )  # fmt: skip
    parser.add_argument(
        "-f", "--file", action="append", default=[], metavar="KEY=PATH",
        help="a media input: the file is uploaded and its asset:// URI sent",
    )  # fmt: skip
    parser.add_argument("--revision", help="a revision id (default: the published one)")
    parser.add_argument("--accept-external-cost-risk", action="store_true", default=None)


def _run_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="submit a run (and follow it)")
    _inputs(run)
    run.add_argument("--wait", action="store_true", help="follow the run until it ends")
    run.add_argument("--out", type=Path, help="download the outputs here (implies --wait)")
    run.add_argument("--idempotency-key", help="default: a fresh key, reused on retries")
    run.add_argument("--timeout", type=float, help="give up waiting after this many seconds")
    run.set_defaults(handler=commands.run)
    quote = sub.add_parser("quote", parents=[common], help="price a run without running it")
    _inputs(quote)
    quote.set_defaults(handler=commands.quote)


def _runs_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    runs = sub.add_parser("runs", parents=[common], help="your runs").add_subparsers(
        dest="action", required=True
    )
    listing = runs.add_parser("list", parents=[common], help="newest first")
    listing.add_argument("--workflow")
    listing.add_argument(
        "--status", choices=["queued", "running", "succeeded", "failed", "cancelled"]
    )
    listing.add_argument("--limit", type=int, default=20, help="at most this many (0: all)")
    listing.set_defaults(handler=commands.runs_list)
    show = runs.add_parser("show", parents=[common], help="one run's bill and outputs")
    show.add_argument("run_id")
    show.add_argument("--execution", action="store_true", help="the live view instead")
    show.set_defaults(handler=commands.runs_show)
    cancel = runs.add_parser("cancel", parents=[common], help="cancel a queued or running run")
    cancel.add_argument("run_id")
    cancel.set_defaults(handler=commands.runs_cancel)


def _other_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    flows = sub.add_parser("workflows", parents=[common], help="the workflow market")
    actions = flows.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[common], help="workflows you can run")
    listing.add_argument("--keyword")
    listing.add_argument("--tag")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (0: all)")
    listing.set_defaults(handler=commands.workflows_list)
    show = actions.add_parser("show", parents=[common], help="inputs, outputs and price")
    show.add_argument("workflow")
    show.set_defaults(handler=commands.workflows_show)
    balance = sub.add_parser("balance", parents=[common], help="available and frozen credit")
    balance.set_defaults(handler=commands.balance)


def parser() -> argparse.ArgumentParser:
    common = _common()
    top = argparse.ArgumentParser(
        prog="wfrun-client", parents=[common], description="Run workflows on a wfrun server."
    )
    sub = top.add_subparsers(dest="command", required=True)
    _run_parsers(sub, common)
    _runs_parsers(sub, common)
    _other_parsers(sub, common)
    return top


def _fail(error: Exception, as_json: bool) -> int:
    if isinstance(error, APIError):
        print(f"error: {error}", file=sys.stderr)
        if as_json:
            print(json.dumps({"error": error.to_dict()}, ensure_ascii=False))
    else:
        print(f"error: {error}", file=sys.stderr)
        if as_json:
            print(json.dumps({"error": {"reason": str(error)}}, ensure_ascii=False))
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """The console script's entry point; returns the exit code."""
    args = parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    handler: Handler = args.handler
    try:
        with Client(getattr(args, "base_url", None), getattr(args, "api_key", None)) as client:
            return handler(client, args)
    except (APIError, ConnectionFailed, WaitTimeout, commands.UsageError) as error:
        return _fail(error, args.json)
