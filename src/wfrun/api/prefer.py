"""``Prefer: wait=N`` on submits (open-api-v2.md §7 "Live runs"): answer when the run ends or
after N seconds (N ≤ 60), with the run's ``run/execution`` view as ``data.execution`` and
``Preference-Applied: wait=N``. A replay waits the same way.

The wait is not a sleep loop: it parks on the process's ``LiveSignal`` (woken by the commit
of any change to the caller's runs, in this process or, through NOTIFY or polling, another)
and reads the run's status again only when woken.
"""

from __future__ import annotations

import asyncio

from wfrun.domain.runs import is_terminal
from wfrun.errors import InvalidParameter
from wfrun.runtime import Runtime
from wfrun.services import run_views
from wfrun.services.accounts import Principal
from wfrun.services.run_views import ExecutionView

MAX_WAIT_SECONDS = 60
HEADER = "Prefer"
APPLIED = "Preference-Applied"


def wait_seconds(header: str | None) -> int | None:
    """N of the ``wait=N`` preference (None when the caller asked no wait).

    Raises:
        InvalidParameter: ``wait`` is not a whole number of seconds from 0 to 60.
    """
    if header is None:
        return None
    for preference in header.split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() != "wait":
            continue
        text = value.strip().strip('"')
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_WAIT_SECONDS:
            raise InvalidParameter(
                f"Prefer: wait must be a whole number of seconds from 0 to "
                f"{MAX_WAIT_SECONDS}, got {value.strip()[:40]!r}"
            )
        return int(text)
    return None


async def wait_for_end(
    runtime: Runtime, principal: Principal, run_id: str, *, seconds: int, family: str
) -> ExecutionView:
    """The run's execution view once it has ended, or after ``seconds``, whichever is first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    with runtime.live.watch(principal.account_id) as watch:
        while True:
            run = await run_views.get_run(runtime.db, principal, run_id, family=family)
            left = deadline - loop.time()
            if is_terminal(run.status) or left <= 0:
                break
            await watch.wait(left)
    return await run_views.get_execution(
        runtime.db,
        principal,
        run_id,
        lease_seconds=runtime.settings.worker.lease_seconds,
        family=family,
        running_cap=runtime.limits.limits_of(principal.account_id).max_running_runs,
    )
