"""Scrapes of ``/metrics``: take the database snapshot (one short read transaction, under a
time limit), then render the process's registry (``wfrun.metrics``)."""

from __future__ import annotations

import asyncio
import logging
import time

from wfrun.clock import utcnow
from wfrun.db import metrics_queries as queries
from wfrun.db.database import Database
from wfrun.errors import DatabaseUnavailable
from wfrun.metrics import Metrics
from wfrun.metrics.database import Snapshot

log = logging.getLogger(__name__)


async def take_snapshot(db: Database) -> Snapshot:
    async with db.transaction() as conn:
        return Snapshot(
            runs=await queries.run_counts(conn),
            lanes=await queries.lane_depths(conn),
            instances=await queries.instance_loads(conn),
            money=await queries.money_totals(conn),
            taken_at=utcnow(),
        )


async def scrape(metrics: Metrics, db: Database, *, timeout: float) -> bytes:
    """The text exposition with fresh database values; when the database does not answer
    within ``timeout`` seconds (or the queries fail), the rest with
    ``wfrun_metrics_database_up 0``."""
    async with metrics.scrape_lock:
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                snapshot = await take_snapshot(db)
        except (DatabaseUnavailable, TimeoutError) as exc:
            detail = exc.detail if isinstance(exc, DatabaseUnavailable) else "timed out"
            log.warning("metrics: database values left out (%s)", detail)
            metrics.database.unavailable(time.monotonic() - started)
        except Exception:  # e.g. a schema behind the code: the rest is still worth serving
            log.exception("metrics: database values left out")
            metrics.database.unavailable(time.monotonic() - started)
        else:
            metrics.database.update(snapshot, time.monotonic() - started)
        return metrics.render()
