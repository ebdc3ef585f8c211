"""Demo history: older months of rollups back to the same month last year, stored once, that the
report's trend section really compares against; and last month's demo training jobs with results."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from core.db.session import unit_of_work
from core.demo_history import ensure_history, seed_training_runs
from core.identity import load_personas
from core.metrics.persistence import GpuDailyRollupRow, count_rows, read_days
from core.reports import service as reports

OPS = {p.id: p for p in load_personas()}["li.na"]


def _days(ctx) -> list[date]:
    with ctx.sessions() as s:
        return sorted(s.scalars(select(GpuDailyRollupRow.day).distinct()))


def test_history_fills_back_to_the_same_month_last_year_once_and_trends_use_it(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "none"))  # no manifest: the default demo fleet
    made = ensure_history(ctx.sessions, months=13, step_s=21600, today=date(2026, 11, 29))
    assert made["first"] == "2025-10-01" and made["last"] == "2026-11-28" and made["days"] == 424
    days = _days(ctx)
    assert days[0] == date(2025, 10, 1) and len(days) == 424
    with ctx.sessions() as s:
        assert count_rows(s, date(2025, 10, 1)) > 1000  # one row per GPU × namespace
        oct_rows = read_days(s, date(2025, 10, 1), date(2025, 10, 1))
    assert oct_rows["expected_samples"].unique().to_list() == [4]  # 6-hourly samples
    again = ensure_history(ctx.sessions, months=13, step_s=21600, today=date(2026, 11, 29))
    assert again["days"] == 0 and len(_days(ctx)) == 424

    report = reports.preview(sessions=ctx.sessions, actor=OPS, month="2026-10", scope="company")
    t = report["trends"]
    assert t["same_month_last_year"]["month"] == "2025-10" and t["same_month_last_year"]["gpu_hours_used"] > 0
    assert all(m["summary"] is not None for m in t["months"])
    assert t["vs_last_year"]["gpu_hours_used"] is not None and t["vs_previous_month"]["energy_kwh"] is not None


def test_history_stops_before_the_recent_days_already_stored_and_says_when_a_month_has_no_data(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "none"))
    ensure_history(ctx.sessions, months=1, step_s=21600, today=date(2026, 11, 29))   # 2026-10-01 .. 11-28
    made = ensure_history(ctx.sessions, months=3, step_s=21600, today=date(2026, 11, 29))
    assert made["last"] == "2026-09-30" and made["days"] == 61
    report = reports.preview(sessions=ctx.sessions, actor=OPS, month="2026-10", scope="company")
    assert report["trends"]["same_month_last_year"] is None
    assert [m["month"] for m in report["trends"]["months"] if m["summary"] is None] == ["2026-04", "2026-05", "2026-06",
                                                                                       "2026-07"]


def test_demo_training_runs_show_in_last_months_typical_jobs_once(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "none"))
    made = seed_training_runs(ctx.sessions, today=date(2026, 11, 29))
    assert made == {"month": "2026-10", "jobs": 4, "results": 3}
    assert seed_training_runs(ctx.sessions, today=date(2026, 11, 29))["jobs"] == 0
    ensure_history(ctx.sessions, months=1, step_s=21600, today=date(2026, 11, 29))
    jobs = reports.preview(sessions=ctx.sessions, actor=OPS, month="2026-10", scope="company")["economics"]["training_jobs"]
    assert len(jobs["jobs"]) == 4 and sum(j["quality"] is None for j in jobs["jobs"]) == 1
    assert all(j["gpu_hours"] > 0 and j["energy_kwh"] > 0 for j in jobs["jobs"])
    with unit_of_work(ctx.sessions) as s:
        from core.reports.results import TrainingResultRow

        assert s.scalar(select(func.count()).select_from(TrainingResultRow)) == 3


@pytest.mark.parametrize("bad", [0, -1])
def test_a_bad_month_count_names_the_field(ctx, bad):
    from core.errors import InputError

    with pytest.raises(InputError) as err:
        ensure_history(ctx.sessions, months=bad)
    assert err.value.field == "months"
