"""The portal's one clock: every "now" and "today" in ``core`` comes from here.

Metrics days, rollups and reports are UTC days; every stored timestamp is UTC; the pages show times
in the organisation's time zone (:func:`local`, setting ``COMPUTELOOP_TIMEZONE``). A caller that acts
"as of" a given instant (the demo history, a backfill) wraps the work in :func:`as_of`, so that the
instant reaches every rule beneath it (a start date "in the past", a claim deadline, a request
number's year) instead of each rule reading the wall clock.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time, timezone
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_AS_OF: ContextVar[datetime | None] = ContextVar("computeloop_as_of", default=None)


def utc_now() -> datetime:
    """Now, timezone-aware in UTC (what every stored timestamp is), or the instant of :func:`as_of`."""
    fixed = _AS_OF.get()
    return fixed if fixed is not None else datetime.now(timezone.utc)


def utc_today() -> date:
    """Today's UTC date (a rollup day), whatever the server's local time zone."""
    return utc_now().date()


@contextmanager
def as_of(instant: datetime | date) -> Iterator[datetime]:
    """Run the block as if it were ``instant`` (a date means 09:00 UTC of that day)."""
    if not isinstance(instant, datetime):
        instant = datetime.combine(instant, time(9), tzinfo=timezone.utc)
    token = _AS_OF.set(aware(instant))
    try:
        yield aware(instant)  # type: ignore[misc]
    finally:
        _AS_OF.reset(token)


def aware(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime: SQLite hands back naive datetimes, and everything stored
    is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


TIMEZONE_SETTING = "COMPUTELOOP_TIMEZONE"


def org_zone() -> ZoneInfo:
    """The organisation's time zone (``COMPUTELOOP_TIMEZONE``, default Asia/Shanghai).

    Raises:
        InputError: not an IANA time zone name (field ``COMPUTELOOP_TIMEZONE``).
    """
    from core.config import _get
    from core.errors import InputError

    name = _get(TIMEZONE_SETTING).strip() or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError("error.timezone_unknown", field=TIMEZONE_SETTING, value=name[:64]) from None


def local(value: datetime) -> datetime:
    """``value`` (UTC when naive, as the database gives it) in the organisation's time zone."""
    return aware(value).astimezone(org_zone())
