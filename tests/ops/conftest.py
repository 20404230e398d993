"""Fixtures of the operating tests."""

from __future__ import annotations

from tests.chaos.conftest import fresh_url  # noqa: F401 (the test's database, emptied)
