"""Times as the pages show them: in the organisation's time zone (``COMPUTELOOP_TIMEZONE``,
:func:`core.clock.local`), whatever the database stored (UTC, naive on SQLite)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from core.clock import local, org_zone
from ui.i18n import t


def when(value: datetime | str | None, *, seconds: bool = False) -> str:
    """``2026-12-07 10:00`` (with ``:SS`` when ``seconds``) in the organisation's time zone; "-" for
    none. An ISO string (as some services return) is read first."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return local(value).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def wall_clock(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """A copy of ``frame`` whose ``columns`` (instants: zone-aware, or naive UTC as SQLite stores
    them) are the organisation's wall-clock times without a zone. Vega reads a zone-less time as it
    is, so a chart's time axis and tooltips show the same times as the tables (:func:`when`),
    whatever time zone the viewer's browser is in."""
    out = frame.copy()
    for column in columns:
        out[column] = pd.to_datetime(out[column], utc=True).dt.tz_convert(str(org_zone())).dt.tz_localize(None)
    return out


def zone_note() -> str:
    """"时间按 Asia/Shanghai（UTC+08:00）显示": which time zone the pages' times are in."""
    zone = org_zone()
    offset = datetime.now(zone).strftime("%z")
    return t("uitext.time_zone", zone=str(zone), offset=f"{offset[:3]}:{offset[3:]}")
