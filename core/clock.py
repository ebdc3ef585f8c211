"""The portal's notion of "today": metrics days, rollups and reports are UTC days."""

from __future__ import annotations

from datetime import date, datetime, timezone


def utc_today() -> date:
    """Today's UTC date (a rollup day), whatever the server's local time zone."""
    return datetime.now(timezone.utc).date()


def utc_now() -> datetime:
    """Now, timezone-aware in UTC (what every stored timestamp is)."""
    return datetime.now(timezone.utc)


def aware(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime: SQLite hands back naive datetimes, and everything stored
    is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value
