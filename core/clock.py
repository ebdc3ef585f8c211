"""The portal's notion of "today": metrics days, rollups and reports are UTC days."""

from __future__ import annotations

from datetime import date, datetime, timezone


def utc_today() -> date:
    """Today's UTC date (a rollup day), whatever the server's local time zone."""
    return datetime.now(timezone.utc).date()
