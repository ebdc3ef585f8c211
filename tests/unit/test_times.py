"""Times on the pages are in the organisation's time zone (COMPUTELOOP_TIMEZONE, default
Asia/Shanghai); the database keeps UTC (naive on SQLite)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.clock import local, org_zone
from core.errors import InputError
from tests.support import clock
from ui.times import when

STORED = clock.now().replace(hour=2, minute=0, second=30, microsecond=0)  # today 02:00:30 UTC


def _shown(value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.strftime(fmt)


def test_the_default_zone_is_beijing_time_and_a_naive_value_is_utc(monkeypatch):
    monkeypatch.delenv("COMPUTELOOP_TIMEZONE", raising=False)
    assert str(org_zone()) == "Asia/Shanghai"
    beijing = STORED + timedelta(hours=8)  # China keeps no daylight saving time
    assert when(STORED) == _shown(beijing) and _shown(beijing).endswith(" 10:00")
    assert when(STORED.replace(tzinfo=None)) == _shown(beijing)  # SQLite hands back naive UTC
    assert when(STORED.isoformat(), seconds=True) == _shown(beijing, "%Y-%m-%d %H:%M:%S")
    assert when(None) == "-" and when("") == "-"


def test_another_zone_moves_the_shown_time_and_the_day(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_TIMEZONE", "America/Lima")  # UTC−5 all year: the day before
    assert when(STORED) == _shown(STORED - timedelta(hours=5)) and when(STORED).endswith(" 21:00")
    monkeypatch.setenv("COMPUTELOOP_TIMEZONE", "Asia/Kolkata")  # UTC+5:30
    assert when(STORED) == _shown(STORED + timedelta(hours=5, minutes=30))
    monkeypatch.setenv("COMPUTELOOP_TIMEZONE", "UTC")
    assert local(STORED).hour == 2


@pytest.mark.parametrize("value", ["Mars/Olympus", "../etc/passwd", "+08:00"])
def test_an_unknown_zone_names_the_setting(monkeypatch, value):
    monkeypatch.setenv("COMPUTELOOP_TIMEZONE", value)
    with pytest.raises(InputError) as err:
        org_zone()
    assert err.value.field == "COMPUTELOOP_TIMEZONE"


def test_chart_times_are_the_wall_clock_of_the_organisation_whatever_was_stored(monkeypatch):
    import altair as alt
    import pandas as pd

    from ui.times import wall_clock

    monkeypatch.delenv("COMPUTELOOP_TIMEZONE", raising=False)
    frame = pd.DataFrame({"ts": [STORED, STORED + timedelta(hours=1)], "util": [0.5, 0.6]})
    shown = wall_clock(frame, "ts")
    assert [v.strftime("%Y-%m-%d %H:%M:%S") for v in shown["ts"]] == [when(STORED, seconds=True),
                                                                       when(STORED + timedelta(hours=1), seconds=True)]
    assert shown["ts"].dt.tz is None and frame["ts"].iloc[0] == STORED  # zone-less for Vega; the input untouched
    naive = wall_clock(frame.assign(ts=[v.replace(tzinfo=None) for v in frame["ts"]]), "ts")  # SQLite: naive UTC
    assert naive["ts"].tolist() == shown["ts"].tolist()
    # what Vega receives: the wall-clock time without an offset, drawn as it is in any browser zone
    values = alt.Chart(shown).mark_line().encode(x="ts:T", y="util:Q").to_dict()["datasets"]
    (rows,) = values.values()
    assert rows[0]["ts"] == when(STORED, seconds=True).replace(" ", "T")
    monkeypatch.setenv("COMPUTELOOP_TIMEZONE", "America/Lima")
    assert wall_clock(frame, "ts")["ts"].iloc[0].hour == (STORED - timedelta(hours=5)).hour
