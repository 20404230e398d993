"""Before a revision is imported or published: can an instance run it, and do its nodes exist?

A ``comfyui`` revision runs only on an *able* instance: registered, ``active``, of its kind and
carrying every label the revision requires (health aside: an unhealthy instance is expected
back, and is reported). Importing or publishing a revision that no instance is able to run is
refused (:class:`NoAbleInstance`) unless the operator allows it explicitly: its runs would
wait for nothing with their money frozen. Otherwise the graph is checked against the
``/object_info`` of every able instance that answers (a run may land on any of them); when
none answers, the import is refused (:class:`InstancesUnreachable`) naming each instance and
why, instead of checking against wfrun's built-in node set, which knows ComfyUI's core nodes
only and would reject valid custom ones. That set checks ``local`` revisions alone.

Instances are read in one short transaction; the ``/object_info`` requests run outside it.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from wfrun.db.database import Database
from wfrun.db.instances import LoadedInstance
from wfrun.db.workflows import Revision
from wfrun.domain import manifest as m
from wfrun.domain.manifest import InputSpec
from wfrun.domain.scheduling import INSTANCE_KINDS, labels_match
from wfrun.engines.comfyui.client import ComfyClient, ComfyRequestError
from wfrun.engines.registry import validate_payload
from wfrun.errors import InstancesUnreachable, NoAbleInstance
from wfrun.services import instances

OBJECT_INFO_TIMEOUT = 30.0
"""Seconds to wait for one instance's ``/object_info`` (a large install takes seconds)."""


@dataclass(frozen=True)
class CheckOptions:
    """The operator's explicit exceptions (CLI ``--allow-no-instance``, ``--skip-node-check``)."""

    allow_no_instance: bool = False
    skip_node_check: bool = False
    timeout: float = OBJECT_INFO_TIMEOUT


STRICT = CheckOptions()
"""No exception: refuse without an able instance, and when none answers."""


@dataclass(frozen=True)
class NodeCheck:
    """What the graph was checked against: the instances whose ``/object_info`` it passed, and
    notes on what was not checked and why (said to the operator, never silent)."""

    checked_against: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


async def check_package(
    db: Database,
    *,
    kind: str,
    graph: Mapping[str, Any],
    specs: tuple[InputSpec, ...],
    required_labels: Mapping[str, str],
    options: CheckOptions,
) -> NodeCheck:
    """Validate a graph for its engine; for instance-run kinds, against the able instances.

    Raises:
        InvalidWorkflowPackage: the graph is invalid (naming the instance checked against).
        NoAbleInstance: no instance is able to run it and ``allow_no_instance`` is off.
        InstancesUnreachable: able instances exist but none answered ``/object_info``.
    """
    if kind not in INSTANCE_KINDS:
        validate_payload(kind, graph, specs)
        return NodeCheck()
    registered = [i for i in await instances.list_instances(db) if i.kind == kind]
    able = [
        i for i in registered if i.state == "active" and labels_match(required_labels, i.labels)
    ]
    if not able:
        return _without_instance(kind, required_labels, registered, options)
    unhealthy = tuple(_unhealthy_note(i) for i in able if not i.healthy)
    if options.skip_node_check:
        note = "graph not checked against any instance's /object_info (--skip-node-check)"
        return NodeCheck(notes=(note, *unhealthy))
    answers = await asyncio.gather(*(_object_info(i.url, options.timeout) for i in able))
    checked = [(i, info) for i, (info, _) in zip(able, answers, strict=True) if info is not None]
    failed = [f"{i.url} ({why})" for i, (info, why) in zip(able, answers, strict=True) if why]
    if not checked:
        raise InstancesUnreachable(_unreachable_detail(kind, failed))
    for instance, info in checked:
        validate_payload(kind, graph, specs, info, source=f"{instance.url}/object_info")
    skipped = tuple(f"not checked against {entry}: it did not answer" for entry in failed)
    return NodeCheck(tuple(i.url for i, _ in checked), (*skipped, *unhealthy))


async def check_revision(db: Database, revision: Revision, options: CheckOptions) -> NodeCheck:
    """:func:`check_package` for a stored revision (publishing one imported earlier)."""
    return await check_package(
        db,
        kind=revision.engine_kind,
        graph=revision.payload,
        specs=tuple(m.input_from_json(d) for d in revision.input_manifest),
        required_labels=dict(revision.required_labels or {}),
        options=options,
    )


def _without_instance(
    kind: str,
    required: Mapping[str, str],
    registered: Sequence[LoadedInstance],
    options: CheckOptions,
) -> NodeCheck:
    problem = _no_instance_problem(kind, required, registered)
    if not options.allow_no_instance:
        flags = "".join(f" --label {k}={v}" for k, v in sorted(required.items()))
        raise NoAbleInstance(
            f"{problem}; register one with `wfrun instances add URL{flags}` "
            "or pass --allow-no-instance"
        )
    note = (
        f"accepted without an able instance (--allow-no-instance): {problem}; its runs wait "
        "until one is registered, and its graph was not checked against any /object_info"
    )
    return NodeCheck(notes=(note,))


def _no_instance_problem(
    kind: str, required: Mapping[str, str], registered: Sequence[LoadedInstance]
) -> str:
    if not registered:
        needs = f" (it needs one with labels {_labels(required)})" if required else ""
        return f"no {kind} instance is registered{needs}"
    problem = (
        f"no active {kind} instance has labels {_labels(required)}"
        if required
        else f"no {kind} instance is active"
    )
    listed = "; ".join(_describe(i) for i in registered)
    return f"{problem} ({len(registered)} registered: {listed})"


def _unreachable_detail(kind: str, failed: Sequence[str]) -> str:
    return (
        f"cannot check the graph: no able {kind} instance answered /object_info "
        f"({len(failed)} tried: {'; '.join(failed)}); retry when one is up, "
        "or pass --skip-node-check"
    )


def _labels(labels: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _describe(instance: LoadedInstance) -> str:
    facts = [_labels(instance.labels) or "no labels"]
    if instance.state != "active":
        facts.append(instance.state)
    if not instance.healthy:
        facts.append("unhealthy")
    return f"{instance.url} ({', '.join(facts)})"


def _unhealthy_note(instance: LoadedInstance) -> str:
    why = f": {instance.last_error}" if instance.last_error else ""
    return f"{instance.url} is marked unhealthy{why}"


async def _object_info(url: str, timeout: float) -> tuple[dict[str, Any] | None, str]:
    """The instance's ``/object_info``, or None and why it could not be had."""
    client = ComfyClient(url, timeout=httpx.Timeout(timeout))
    try:
        return await client.object_info(), ""
    except ComfyRequestError as exc:
        return None, _why(exc, url, timeout)
    finally:
        await client.aclose()


def _why(exc: ComfyRequestError, url: str, timeout: float) -> str:
    cause = exc.__cause__
    if isinstance(cause, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(cause, httpx.ConnectError):
        return "connection refused" if _refused(cause) else f"cannot connect: {cause}"
    if isinstance(cause, httpx.TransportError):
        return f"connection failed: {type(cause).__name__}: {cause}"
    return str(exc).removeprefix(f"ComfyUI at {url} ")


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == (
            errno.ECONNREFUSED
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return "refused" in str(exc).lower()
