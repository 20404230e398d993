"""What each ``wfrun-client`` command does (the parser is in ``cli``)."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from wfrun_client._progress import Display
from wfrun_client._sync import Client
from wfrun_client.models import RunInfo

RUN_NOT_SUCCEEDED = 3


class UsageError(Exception):
    """A malformed ``-i``/``-f`` argument or a missing file."""


def _json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _money(value: Decimal | None) -> str:
    return "-" if value is None else format(value, "f")


def _pair(text: str, flag: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"{flag} {text!r}: expected KEY=VALUE")
    return key, value


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _add(inputs: dict[str, Any], key: str, value: Any) -> None:
    """A key given twice becomes a list (several media for a ``multiple`` input)."""
    if key not in inputs:
        inputs[key] = value
    elif isinstance(inputs[key], list) and not isinstance(value, list):
        inputs[key].append(value)
    else:
        inputs[key] = [inputs[key], value]


def inputs(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """``-i`` values and ``-f`` files (uploaded, as ``asset://`` URIs)."""
    collected: dict[str, Any] = {}
    for text in args.input:
        key, value = _pair(text, "-i")
        _add(collected, key, _value(value))
    for text in args.file:
        key, name = _pair(text, "-f")
        path = Path(name).expanduser()
        if not path.is_file():
            raise UsageError(f"-f {text!r}: no such file")
        _add(collected, key, client.assets.upload(path).asset_uri)
    return collected


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "revision_id": args.revision,
        "accept_external_cost_risk": args.accept_external_cost_risk,
    }


def quote(client: Client, args: argparse.Namespace) -> int:
    got = client.runs.quote(args.workflow, inputs(client, args), **_fields(args))
    if args.json:
        _json(got)
    else:
        print(
            f"{_money(got.quote_amount)} {got.quote_currency}  ({got.workflow_id} {got.revision_id})"
        )
    return 0


def run(client: Client, args: argparse.Namespace) -> int:
    submitted = client.runs.submit(
        args.workflow, inputs(client, args), idempotency_key=args.idempotency_key, **_fields(args)
    )
    if not args.json:
        print(
            f"submitted {submitted.run_order_id}: frozen {_money(submitted.quote_amount)} CNY",
            flush=True,
        )
    if not (args.wait or args.out):
        if args.json:
            _json(submitted)
        return 0
    display = Display(sys.stderr if args.json else sys.stdout, live=_live(args))
    try:
        info = client.runs.wait(submitted.run_order_id, on_event=display, timeout=args.timeout)
    finally:
        display.close()
    saved = client.runs.download_outputs(info.run_order_id, args.out) if args.out else {}
    _report(info, saved, args.json)
    return 0 if info.run_status == "succeeded" else RUN_NOT_SUCCEEDED


def _live(args: argparse.Namespace) -> bool:
    return not args.json and sys.stdout.isatty()


def _report(info: RunInfo, saved: dict[str, list[Path]], as_json: bool) -> None:
    if as_json:
        files = {key: [str(p) for p in paths] for key, paths in saved.items()}
        _json({"run": info.model_dump(mode="json"), "files": files})
        return
    cost = f"charged {_money(info.final_amount)} CNY, released {_money(info.released_amount)} CNY"
    print(f"{info.run_status}: {info.run_order_id} ({cost})")
    if info.error_code:
        print(f"error: {info.error_code}: {info.error_message}")
    for path in itertools.chain.from_iterable(saved.values()):
        print(f"saved {path}")


def runs_list(client: Client, args: argparse.Namespace) -> int:
    found = client.runs.list(workflow_id=args.workflow, status=args.status)
    items = list(itertools.islice(found, args.limit or None))
    if args.json:
        _json([item.model_dump(mode="json") for item in items])
        return 0
    for item in items:
        amount = item.final_amount if item.final_amount is not None else item.quote_amount
        print(
            f"{item.run_order_id}  {item.run_status:<9}  {_money(amount)}  {item.created_at}  {item.title}"
        )
    return 0


def runs_show(client: Client, args: argparse.Namespace) -> int:
    got = client.runs.execution(args.run_id) if args.execution else client.runs.get(args.run_id)
    if args.json:
        _json(got)
        return 0
    for key, value in got.model_dump(mode="json").items():
        print(
            f"{key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value}"
        )
    return 0


def runs_cancel(client: Client, args: argparse.Namespace) -> int:
    got = client.runs.cancel(args.run_id)
    if args.json:
        _json(got)
    else:
        print(f"{got.run_order_id}: {got.cancel_outcome} ({got.run_status})")
    return 0


def workflows_list(client: Client, args: argparse.Namespace) -> int:
    found = client.workflows.list(keyword=args.keyword, tag=args.tag)
    items = list(itertools.islice(found, args.limit or None))
    if args.json:
        _json([item.model_dump(mode="json") for item in items])
        return 0
    for item in items:
        print(
            f"{item.workflow_id}  {_money(item.quote_amount)} {item.quote_currency}  {item.title}"
        )
    return 0


def workflows_show(client: Client, args: argparse.Namespace) -> int:
    got = client.workflows.get(args.workflow)
    if args.json:
        _json(got)
        return 0
    print(f"{got.workflow_id}  {got.title}  (revision {got.revision_id})")
    print(f"quote: {_money(got.quote_amount)} {got.quote_currency}")
    for spec in got.editable_parameter_manifest:
        need = "required" if spec.required else f"default {spec.default_value!r}"
        print(f"  -i/-f {spec.key}  {spec.type}  {need}  {spec.display_name or ''}")
    for out in got.candidate_output_manifest:
        print(f"  output {out.key}  {out.type}{' (several)' if out.multiple else ''}")
    return 0


def balance(client: Client, args: argparse.Namespace) -> int:
    got = client.account.balance()
    if args.json:
        _json(got)
    else:
        print(
            f"available {_money(got.available_amount)} {got.currency}, "
            f"frozen {_money(got.frozen_amount)}"
        )
    return 0
