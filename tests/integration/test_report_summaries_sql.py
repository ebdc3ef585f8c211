"""Month summaries summed in the database (core.reports.sql_summaries) equal the polars path they
replace — every rollup row read through ``read_days``, scoped, then ``month_summary`` per month —
on SQLite and PostgreSQL, for every scope, and so does the whole analysis report built on them."""

from __future__ import annotations

import random
from datetime import timedelta

import polars as pl
import pytest

from core.db.session import unit_of_work
from core.identity import load_personas
from core.metrics.persistence import read_days, replace_day
from core.metrics.schema import ROLLUP_SCHEMA
from core.org import load_org
from core.reports import analysis, service
from core.reports.build import month_summary, parse_month, scope_clusters
from tests.support import clock

OPS = next(p for p in load_personas() if p.id == "li.na")
UNPRICED = "NOT-IN-THE-CATALOG"
# uuid, cluster, GPU model, busy? — sd-jinan's only allocated GPU has no catalog price, so its cost is None
GPUS = [("g-hq1", "hq-beijing-1", "H800-SXM", True), ("g-hq2", "hq-beijing-1", "A800-80GB", True),
        ("g-hq3", "hq-beijing-2", "H20", True), ("g-hq4", "hq-beijing-2", "L20", False),
        ("g-js1", "js-nanjing", "A800-80GB", True), ("g-sd1", "sd-jinan", UNPRICED, True),
        ("g-sd2", "sd-jinan", "A30", False)]
DATA_MONTHS = (-13, -12, -7, -2, -1)     # month offsets with rollups; -3 and the others have none
ASKED = [clock.month(k) for k in range(-14, 1)]
EXPECTED = 96


def _gpu_day(rng: random.Random, day, uuid, cluster, model, busy) -> list[dict]:
    """One GPU's rows of one day as the rollup job writes them: the day's samples split over up to
    two namespaces and idle time, coverage = the GPU's samples in any namespace ÷ expected, on each row."""
    parts = rng.choice([[""], ["ns-a"], ["ns-a", ""], ["ns-a", "ns-b"], ["ns-b", "ns-c", ""]]) if busy else [""]
    samples = [rng.randint(4, EXPECTED // len(parts)) for _ in parts]
    coverage = sum(samples) / EXPECTED
    rows = []
    for ns, n in zip(parts, samples):
        hours, util = n * 24 / EXPECTED, rng.random()
        rows.append({"day": day, "cluster": cluster, "hostname": f"{cluster}-n1", "uuid": uuid, "model": model,
                     "namespace": ns, "mean_util": util, "peak_util": util, "mean_mem": 0.5, "peak_mem": 0.5,
                     "allocated_gpu_hours": hours if ns else 0.0, "used_gpu_hours": util * hours,
                     "energy_kwh": rng.uniform(0.1, 9.0), "samples": n, "expected_samples": EXPECTED,
                     "coverage": coverage})
    return rows


def _seed(ctx) -> int:
    """Rollups on the first, second, 15th and last day of each month of :data:`DATA_MONTHS`."""
    rng, stored = random.Random(20), 0
    for offset in DATA_MONTHS:
        first, last = parse_month(clock.month(offset))
        for day in (first, first + timedelta(days=1), first + timedelta(days=14), last):
            rows = [r for gpu in GPUS for r in _gpu_day(rng, day, *gpu)]
            with unit_of_work(ctx.sessions) as s:
                replace_day(s, day, pl.DataFrame(rows, schema=ROLLUP_SCHEMA))
            stored += len(rows)
    return stored


def polars_summaries(session, months, scope, org) -> dict:
    """The reference: the summaries as they were computed before the database summed them."""
    clusters = scope_clusters(org, scope)
    gpus_total = sum(p.gpus for p in org.pools.values() if p.cluster in clusters)
    bounds = {m: parse_month(m) for m in months}
    frame = read_days(session, min(b[0] for b in bounds.values()), max(b[1] for b in bounds.values()))
    frame = frame.filter(pl.col("cluster").is_in(sorted(clusters)))
    return {m: month_summary(frame.filter((pl.col("day") >= first) & (pl.col("day") <= last)), month=m,
                             prices=service.prices(), gpus_total=gpus_total)
            for m, (first, last) in bounds.items()}


def _same(new, old) -> None:
    """Equal summaries: the same months, None in the same places, every figure to 1e-9."""
    assert new.keys() == old.keys()
    for month in old:
        assert (new[month] is None) == (old[month] is None), month
        if old[month] is not None:
            assert new[month].keys() == old[month].keys()
            for key, value in old[month].items():
                if isinstance(value, float):
                    assert new[month][key] == pytest.approx(value, rel=1e-9, abs=1e-9), (month, key)
                else:
                    assert new[month][key] == value, (month, key)


@pytest.mark.parametrize("scope", ["company", "HQ", "JS", "SD", "ZJ"])
def test_summed_in_the_database_the_summaries_equal_the_polars_path(ctx, scope):
    assert _seed(ctx) > 100
    org = load_org()
    with unit_of_work(ctx.sessions) as s:
        new = service.summaries(s, ASKED, scope, org)
        old = polars_summaries(s, ASKED, scope, org)
    _same(new, old)
    with_data = {m for m, v in old.items() if v is not None}
    if scope == "ZJ":                                     # no GPU of the seed in zj-hangzhou
        assert not with_data
        return
    assert with_data == {clock.month(k) for k in DATA_MONTHS}
    figures = [old[m] for m in sorted(with_data)]
    assert all(0 < f["coverage"] < 1 and f["gpu_hours_used"] > 0 and f["energy_kwh"] > 0 for f in figures)
    if scope == "SD":                                     # allocated rows only of an unpriced model
        assert all(f["cost"] is None and f["util_allocated"] is not None for f in figures)
    else:
        assert all(f["cost"] > 0 and 0 < f["util_allocated"] < 1 for f in figures)


def test_a_month_without_rollups_and_no_month_at_all(ctx):
    _seed(ctx)
    org = load_org()
    with unit_of_work(ctx.sessions) as s:
        assert service.summaries(s, [clock.month(-3)], "company", org) == {clock.month(-3): None}
        assert service.summaries(s, [], "company", org) == {}


def _without_built_at(value):
    if isinstance(value, dict):
        return {k: _without_built_at(v) for k, v in value.items() if k != "built_at"}
    if isinstance(value, list):
        return [_without_built_at(v) for v in value]
    return value


@pytest.mark.parametrize("drill", [None, {"cluster": "hq-beijing-1"}])
def test_the_analysis_report_is_the_same_figure_for_figure(ctx, monkeypatch, drill):
    _seed(ctx)
    month = clock.month(-1)
    ask = dict(sessions=ctx.sessions, actor=OPS, month=month, scope="company", drill=drill,
               year=clock.month_start(-1).year)
    new = analysis.analysis_report(**ask)
    monkeypatch.setattr(service, "summaries", polars_summaries)
    old = analysis.analysis_report(**ask)
    assert _without_built_at(new) == _without_built_at(old)
    assert new["annual"]["months_with_data"] >= 1 and new["annual"]["gpu_hours_used"] > 0
    assert new["report"]["trends"]["previous_month"] is not None                # -2 has data
    assert new["report"]["trends"]["same_month_last_year"] is not None          # -13 has data
