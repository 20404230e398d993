"""What a run needs from its workflow revision (pure).

``db/`` keeps a revision as JSON columns; ``services.catalog.revision_spec`` decodes them
into this once, so the submit path and the workers read manifests and prices as values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wfrun.domain.manifest import InputSpec, OutputSpec
from wfrun.domain.pricing import PriceTable


@dataclass(frozen=True)
class RevisionSpec:
    """A revision's engine, payload, manifests, prices and limits, decoded from storage."""

    revision_id: str
    engine_kind: str
    payload: dict[str, Any]
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    prices: PriceTable
    timeout_seconds: int
    output_retention_hours: int | None = None
    required_labels: dict[str, str] = field(default_factory=dict)
    max_queue_seconds: int | None = None
    """The package's own queue deadline (it may only lower the server's)."""
