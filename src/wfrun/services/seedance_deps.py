"""What Seedance runs need from the process: the Ark gateway, material registry, price book,
storage, links and settings, built once by the composition root (:mod:`wfrun.runtime`).

It lives with the services (not the workers) because services take it too (``wfrun seedance
check``), and it holds the database, which the engines may not import.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from wfrun.config import SeedanceSettings
from wfrun.db.database import Database
from wfrun.domain.seedance import PriceBook
from wfrun.engines.seedance.ark import ArkGateway
from wfrun.engines.seedance.materials import MaterialRegistry
from wfrun.storage.base import ObjectStore
from wfrun.storage.links import Links
from wfrun.storage.signing import UrlSigner


@dataclass(frozen=True)
class SeedanceDeps:
    db: Database
    storage: ObjectStore
    ark: ArkGateway
    links: Links
    prices: PriceBook
    settings: SeedanceSettings
    materials: MaterialRegistry | None = None
    output_retention: timedelta = timedelta(days=7)
    signer: UrlSigner | None = None
    """Signs callback URLs (with ``settings.callback_base_url``)."""
