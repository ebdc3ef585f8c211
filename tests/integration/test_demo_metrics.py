"""Demo metrics on SQLite and PostgreSQL: samples and rollups are made once, a second call does
nothing, and the water level and usage sheets read them."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from core.identity import load_personas
from core.metrics import usage
from core.metrics import water_level as wl
from core.metrics.demo_metrics import ensure_demo_metrics
from core.metrics.offline import OfflineSource
from core.metrics.persistence import count_rows
from core.metrics.sources import inventory_nodes, metrics_source

TODAY = date(2026, 3, 10)


def _rows(ctx) -> int:
    with ctx.sessions() as s:
        return count_rows(s)


def test_demo_metrics_are_generated_and_rolled_up_once(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "samples"))
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    first = ensure_demo_metrics(ctx.sessions, days=2, today=TODAY)
    assert first["generated_days"] == 2 and first["rolled_up_days"] == 2 and first["rows"] > 0
    assert OfflineSource(tmp_path / "samples").days() == [TODAY - timedelta(days=2), TODAY - timedelta(days=1)]
    stored = _rows(ctx)
    assert stored == first["rows"]
    assert first["serving_days"] == 2
    again = ensure_demo_metrics(ctx.sessions, days=2, today=TODAY)
    assert again["generated_days"] == 0 and again["rolled_up_days"] == 0 and again["serving_days"] == 0
    assert _rows(ctx) == stored


def test_demo_service_samples_are_deterministic_and_made_for_existing_folders(ctx, tmp_path):
    import shutil

    from core.metrics.fleet import load_manifest
    from core.metrics.serving import OfflineServingSource, demo_profiles

    root = tmp_path / "samples"
    ensure_demo_metrics(ctx.sessions, days=1, root=root, today=TODAY)
    made = OfflineServingSource(root / "serving")
    day = TODAY - timedelta(days=1)
    frame = made.read(*_day_window(day))
    shutil.rmtree(root / "serving")  # a folder from before the service samples existed
    assert ensure_demo_metrics(ctx.sessions, days=1, root=root, today=TODAY)["serving_days"] == 1
    assert made.read(*_day_window(day)).equals(frame)
    profiles = demo_profiles(load_manifest(root).namespaces(), seed=load_manifest(root).seed)
    exporting = {ns for ns, p in profiles.items() if p["exports"]}
    assert set(frame["namespace"]) <= exporting and len(exporting) < len(profiles)
    stats = made.serving_stats(*_day_window(day))
    idle = stats.filter(pl.col("namespace").is_in([ns for ns, p in profiles.items() if p["kind"] == "idle_service"]))
    busy = stats.filter(pl.col("namespace").is_in([ns for ns, p in profiles.items() if p["kind"] == "inference"]))
    assert idle.height and busy.height
    assert idle["qps_mean"].max() < 0.01 < busy["qps_mean"].min()


def _day_window(day):
    from datetime import datetime, timezone

    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def test_a_day_missing_from_the_rollups_is_rolled_up_without_regenerating(ctx, tmp_path, monkeypatch):
    from sqlalchemy import delete

    from core.db.session import unit_of_work
    from core.metrics.persistence import GpuDailyRollupRow

    root = tmp_path / "samples"
    ensure_demo_metrics(ctx.sessions, days=2, root=root, today=TODAY)
    with unit_of_work(ctx.sessions) as s:
        s.execute(delete(GpuDailyRollupRow).where(GpuDailyRollupRow.day == TODAY - timedelta(days=1)))
    again = ensure_demo_metrics(ctx.sessions, days=2, root=root, today=TODAY)
    assert again == {"root": str(root), "generated_days": 0, "rolled_up_days": 1, "rows": again["rows"], "serving_days": 0,
                     "cpu_days": 0, "cpu_rollup_days": 0}
    assert again["rows"] > 0


def test_water_level_trend_and_sheets_read_the_demo_metrics(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "samples"))
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    ensure_demo_metrics(ctx.sessions, days=2, today=TODAY)
    ops = next(p for p in load_personas() if p.id == "li.na")
    source = metrics_source()
    nodes = inventory_nodes(source)
    snap = wl.snapshot(sessions=ctx.sessions, actor=ops, source=source, nodes=nodes, cache={})
    assert snap.totals["total"] == sum(n.gpus for n in nodes)
    assert 0 < snap.totals["in_use"] < snap.totals["total"]
    assert snap.totals["reserved"] > 0
    daily = wl.trend(sessions=ctx.sessions, actor=ops, nodes=nodes, first=TODAY - timedelta(days=7), last=TODAY)
    assert set(daily["period"].to_list()) == {TODAY - timedelta(days=2), TODAY - timedelta(days=1)}
    kinds = usage.namespace_kinds(sessions=ctx.sessions, source=source)
    sheet = usage.inference_sheet(sessions=ctx.sessions, actor=ops, month=TODAY, kinds=kinds)
    assert sheet.rows.height > 0 and "training" not in set(sheet.rows["kind"].to_list())
