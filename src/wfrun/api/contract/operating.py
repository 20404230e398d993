"""Response models of the operating endpoints: ``/healthz`` and ``/readyz`` (open-api-v2.md §7
"Operating"; ``/metrics`` answers Prometheus text, not JSON)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from wfrun.api.contract.fields import CLOSED, f


class HealthData(BaseModel):
    """The process is alive (the database is not consulted)."""

    model_config = CLOSED
    version: str = f("wfrun's version.", "0.1.0")


class PartData(BaseModel):
    model_config = CLOSED
    status: Literal["ok", "failing", "unknown"] = f(
        "ok; failing; unknown (not checked because what it depends on is failing).", "ok"
    )
    detail: str = f("What was found.", "reachable (postgresql)")


class ReadyData(BaseModel):
    """Every part this process needs answers: the database, its schema at the code's
    migration head, and storage taking a write. A 503 names the failing parts instead."""

    model_config = CLOSED
    ready: bool = f("Always true in a 200.", True)
    database: PartData
    migrations: PartData
    storage: PartData
