"""Time in one place: aware UTC datetimes and their wire spelling."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def to_rfc3339(value: datetime | None) -> str | None:
    """Format as ``2026-11-25T10:00:00.123Z`` (milliseconds, UTC), or None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
