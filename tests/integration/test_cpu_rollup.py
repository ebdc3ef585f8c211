"""CPU rollups: the demo CPU samples (deterministic, training near its request, idle services near
zero), the daily job storing them beside the GPU rollup, idempotent on SQLite and PostgreSQL, and
the monthly report reading them."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from sqlalchemy import func, select

from core.db.session import unit_of_work
from core.metrics.cpu import (CPU_SUBDIR, CpuDailyRollupRow, OfflineCpuSource, day_parts, demo_profiles, read_cpu_days,
                              source_kind)
from core.metrics.demo_metrics import ensure_demo_metrics
from core.metrics.fleet import load_manifest
from core.metrics.offline import OfflineSource
from core.metrics.persistence import rollup_and_store

TODAY = date(2026, 3, 4)
DAY = TODAY - timedelta(days=1)


@pytest.fixture()
def demo(ctx, tmp_path):
    root = tmp_path / "samples"
    made = ensure_demo_metrics(ctx.sessions, days=1, root=root, today=TODAY)
    return root, made


def _count(ctx) -> int:
    with unit_of_work(ctx.sessions) as s:
        return int(s.execute(select(func.count()).select_from(CpuDailyRollupRow)).scalar_one())


def test_demo_cpu_samples_are_deterministic_and_look_like_their_workloads(ctx, demo):
    import shutil

    root, made = demo
    assert made["cpu_days"] == 1 and made["cpu_rollup_days"] == 1
    cpu = OfflineCpuSource(root / CPU_SUBDIR)
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
    frame = cpu.read(start, start + timedelta(days=1))
    shutil.rmtree(root / CPU_SUBDIR)
    assert ensure_demo_metrics(ctx.sessions, days=1, root=root, today=TODAY)["cpu_days"] == 1
    assert cpu.read(start, start + timedelta(days=1)).equals(frame)
    profiles = demo_profiles(load_manifest(root).namespaces(), seed=load_manifest(root).seed)
    parts = day_parts(cpu, DAY).with_columns(u=pl.col("cpu_core_s") / pl.col("requested_core_s"))
    kinds = {ns: p["kind"] for ns, p in profiles.items()}
    u = {k: parts.filter(pl.col("namespace").is_in([n for n, v in kinds.items() if v == k]))["u"] for k in
         ("training", "idle_service", "inference")}
    assert u["training"].len() and u["idle_service"].len() and u["inference"].len()
    assert u["training"].min() > 0.6 and u["idle_service"].max() < 0.03
    assert u["idle_service"].max() < u["inference"].min() and u["inference"].max() < u["training"].min()
    covered = parts["covered_s"] / 86_400  # CPU rows follow the GPU samples, gaps (demo imperfections) included
    assert covered.median() == 1.0 and covered.min() > 0.5


def test_the_daily_job_stores_cpu_beside_the_gpu_rollup_and_a_rerun_replaces_it(ctx, demo):
    root, _ = demo
    before = _count(ctx)
    with unit_of_work(ctx.sessions) as s:
        stored = read_cpu_days(s, DAY, DAY)
    cpu = OfflineCpuSource(root / CPU_SUBDIR)
    parts = day_parts(cpu, DAY)
    for _ in range(2):
        result = rollup_and_store(sessions=ctx.sessions, source=OfflineSource(root), day=DAY, step_s=300,
                                  cpu=(parts, source_kind(cpu)))
        assert result["cpu"]["inserted"] == parts.height == before and result["cpu"]["deleted"] == before
        assert _count(ctx) == before
    with unit_of_work(ctx.sessions) as s:
        again = read_cpu_days(s, DAY, DAY)
    assert again.equals(stored)
    # a day without CPU samples stores nothing and leaves the stored rows alone
    empty = parts.clear()
    result = rollup_and_store(sessions=ctx.sessions, source=OfflineSource(root), day=DAY, step_s=300,
                              cpu=(empty, "offline"))
    assert result["cpu"] is None and _count(ctx) == before


def test_the_monthly_report_ranks_by_cpu_from_the_rollups(ctx, demo):
    from core.reports.service import compute

    with ctx.sessions() as s:
        report = compute(s, month=DAY.strftime("%Y-%m"), scope="company")
        empty = compute(s, month="2025-01", scope="company")
    top = report["top"]["cpu"]
    assert top["available"] and top["ranking"] and 0.9 < top["coverage"] <= 1.0
    utils = [next(e for e in report["entities"] if e["id"] == k)["cpu_util"] for k in top["ranking"]]
    assert utils == sorted(utils, reverse=True) and 0 < utils[-1] <= utils[0] <= 1
    assert empty["top"]["cpu"] == {"available": False, "note_key": "reports.cpu_not_collected"}
