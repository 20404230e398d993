"""``Record``: a database row or a dict of column values, as services and mappers see it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

Record: TypeAlias = Mapping[Any, Any]
