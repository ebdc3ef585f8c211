"""Times on the pages are in the organisation's time zone (COMPUTELOOP_TIMEZONE, default
Asia/Shanghai); the database keeps UTC (naive on SQLite)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.clock import local, org_zone
from core.errors import InputError
from ui.times import when

STORED = datetime(2026, 12, 7, 2, 0, 30, tzinfo=timezone.utc)


def test_the_default_zone_is_beijing_time_and_a_naive_value_is_utc(monkeypatch):
    monkeypatch.delenv("COMPUTELOOP_TIMEZONE", raising=False)
    assert str(org_zone()) == "Asia/Shanghai"
    assert when(STORED) == "2026-12-07 10:00"
    assert when(STORED.replace(tzinfo=None)) == "2026-12-07 10:00"  # SQLite hands back naive UTC
    assert when(STORED.isoformat(), seconds=True) == "2026-12-07 10:00:30"
    assert when(None) == "-" and when("") == "-"


def test_another_zone_moves_the_shown_time_and_the_day(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_TIMEZONE", "America/New_York")
    assert when(STORED) == "2026-12-06 21:00"
    monkeypatch.setenv("COMPUTELOOP_TIMEZONE", "UTC")
    assert local(STORED).hour == 2


@pytest.mark.parametrize("value", ["Mars/Olympus", "../etc/passwd", "+08:00"])
def test_an_unknown_zone_names_the_setting(monkeypatch, value):
    monkeypatch.setenv("COMPUTELOOP_TIMEZONE", value)
    with pytest.raises(InputError) as err:
        org_zone()
    assert err.value.field == "COMPUTELOOP_TIMEZONE"
