"""The tests' frozen clock: the one place a calendar date is written.

``tests/conftest.py`` freezes the wall clock at :data:`BASE` (time-machine, ticking from there, so
code that waits still sees time pass) before any test module is imported, so module-level fixtures
may already be written relative to it. ``COMPUTELOOP_TEST_CLOCK_SHIFT_DAYS`` moves the frozen
instant (``.ci/run`` runs the date-sensitive modules again about 400 days ahead): a test that
hard-codes a calendar date instead of writing it relative to :func:`today` fails that run the day it
is written, not a month later.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone

from core.clock import utc_now, utc_today

SHIFT_ENV = "COMPUTELOOP_TEST_CLOCK_SHIFT_DAYS"
# Early morning UTC, so that a session ticking for an hour never crosses midnight.
BASE = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)


def shift_days() -> int:
    """The days the frozen clock is moved by (the environment variable; 0 when unset)."""
    raw = os.environ.get(SHIFT_ENV, "").strip() or "0"
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{SHIFT_ENV} must be a whole number of days, not {raw!r}") from None


def frozen_instant() -> datetime:
    """Where the tests' clock starts: :data:`BASE` moved by :func:`shift_days`."""
    return BASE + timedelta(days=shift_days())


def now() -> datetime:
    """The frozen now (aware UTC)."""
    return utc_now()


def today() -> date:
    """The frozen UTC date."""
    return utc_today()


def day(offset: int = 0) -> date:
    """The date ``offset`` days from the frozen today."""
    return today() + timedelta(days=offset)


def iso(offset: int = 0) -> str:
    """:func:`day` as ``YYYY-MM-DD`` (what forms carry)."""
    return day(offset).isoformat()


def month_start(offset: int = 0) -> date:
    """The first day of the month ``offset`` months from the frozen today's (-1: last month)."""
    first = today().replace(day=1)
    index = first.year * 12 + first.month - 1 + offset
    return date(index // 12, index % 12 + 1, 1)


def month(offset: int = 0) -> str:
    """:func:`month_start` as ``YYYY-MM`` (report months)."""
    return month_start(offset).strftime("%Y-%m")
