"""Per-account limits: the server's ``limits.*`` defaults with an operator's overrides on top.

:class:`LimitBook` is each process's cached copy of the overrides (reloaded every
``limits.overrides_refresh_seconds`` by the API's rate-limit sync, see
``services.rate_limits``), so no request reads them. The queued-run cap is checked inside the
submit transaction under the account's row lock (the freeze's ``UPDATE``), so concurrent
submits of one account are counted one after the other and the cap is exact; with no cap for
the account the submit gains no statement, with one, one ``count``. The running-run cap is
the claim's (``queue.quotas``), which reads the overrides directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from wfrun.clock import utcnow
from wfrun.config import LimitsSettings
from wfrun.db import accounts as accounts_db
from wfrun.db import limits as limits_db
from wfrun.db.database import Connection, Database
from wfrun.db.limits import LIMIT_FIELDS, AccountLimits
from wfrun.errors import InvalidParameter, TooManyQueuedRuns
from wfrun.queue import quotas


@dataclass(frozen=True, slots=True)
class Limits:
    """One account's limits in force (None: no limit) and which of them are its own."""

    requests_per_second: float | None
    burst: int | None
    max_queued_runs: int | None
    max_running_runs: int | None
    overridden: tuple[str, ...] = ()


def effective(settings: LimitsSettings, override: AccountLimits | None) -> Limits:
    """The limits in force for an account: each override column, else the default."""
    values: dict[str, Any] = {}
    overridden: list[str] = []
    for name in LIMIT_FIELDS:
        own = getattr(override, name) if override is not None else None
        values[name] = own if own is not None else getattr(settings, name)
        if own is not None:
            overridden.append(name)
    if not values["requests_per_second"]:
        values["requests_per_second"] = None  # 0 means off
    return Limits(**values, overridden=tuple(overridden))


@dataclass
class LimitBook:
    """This process's view of every account's limits: live settings plus cached overrides."""

    settings: LimitsSettings = field(default_factory=LimitsSettings)
    overrides: dict[str, AccountLimits] = field(default_factory=dict)

    def limits_of(self, account_id: str) -> Limits:
        return effective(self.settings, self.overrides.get(account_id))

    def rate_of(self, account_id: str) -> tuple[float, int] | None:
        """The account's request rate and bucket size, or None when unlimited (the
        per-request path: no :class:`Limits` built)."""
        own = self.overrides.get(account_id)
        rate = own.requests_per_second if own is not None else None
        if rate is None:
            rate = self.settings.requests_per_second
        if not rate:
            return None
        burst = own.burst if own is not None else None
        if burst is None:
            burst = self.settings.burst
        return rate, burst if burst is not None else max(1, math.ceil(rate))

    async def refresh(self, db: Database) -> None:
        """Reload the overrides (one statement)."""
        async with db.transaction() as conn:
            rows = await limits_db.list_overrides(conn)
        self.overrides = {row.account_id: row for row in rows}


async def check_queued_runs(conn: Connection, account_id: str, book: LimitBook | None) -> None:
    """Refuse a submit that takes the account past its cap of waiting runs. Call it inside
    the submit transaction after the new run's job is queued and the account's row is locked
    (the freeze): concurrent submits are counted one after another, so the cap is exact.

    Raises:
        TooManyQueuedRuns: the cap is reached; the transaction rolls back, nothing frozen.
    """
    cap = book.limits_of(account_id).max_queued_runs if book is not None else None
    if cap is None:
        return
    waiting = await quotas.waiting_count(conn, account_id) - 1  # besides the new run
    if waiting >= cap:
        raise TooManyQueuedRuns(
            f"the account has {waiting} runs waiting in the queue and may have at most {cap} "
            "(limits.max_queued_runs); submit again when one has started"
        )


async def show(db: Database, settings: LimitsSettings, account_id: str) -> Limits:
    """An account's limits in force (AccountNotFound when there is no such account)."""
    async with db.transaction() as conn:
        await accounts_db.get_account(conn, account_id)
        return effective(settings, await limits_db.find_overrides(conn, account_id))


async def set_overrides(
    db: Database,
    settings: LimitsSettings,
    account_id: str,
    changes: Mapping[str, float | int],
    *,
    clear: bool = False,
) -> Limits:
    """Clear the account's overrides (``clear``), then set ``changes``; its limits after."""
    _check(changes)
    async with db.transaction(write=True) as conn:
        await accounts_db.get_account(conn, account_id)
        if clear:
            await limits_db.delete_overrides(conn, account_id)
        if changes:
            await limits_db.save_overrides(conn, account_id, changes, utcnow())
        return effective(settings, await limits_db.find_overrides(conn, account_id))


_MINIMUM = {"requests_per_second": 0, "burst": 1, "max_queued_runs": 0, "max_running_runs": 1}


def _check(changes: Mapping[str, float | int]) -> None:
    for name, value in changes.items():
        if name not in _MINIMUM:
            raise InvalidParameter(f"unknown limit {name!r}")
        if value < _MINIMUM[name]:
            raise InvalidParameter(f"{name} must be at least {_MINIMUM[name]}, got {value}")


def as_dict(limits: Limits) -> dict[str, Any]:
    """The limits for ``--json`` and the console (None: no limit)."""
    return {f.name: getattr(limits, f.name) for f in fields(limits) if f.name != "overridden"} | {
        "overridden": list(limits.overridden)
    }
