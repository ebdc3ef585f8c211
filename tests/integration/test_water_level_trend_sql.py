"""The water-level trend summed in the database (core.metrics.trend_sql, behind
``water_level.trend``) equals the polars path it replaces — every rollup row read through
``read_days`` and grouped by ``water_level.trends`` — on SQLite and PostgreSQL, per day and per
month, for hq and provincial ops alike (the water level is fleet-wide: the role decides)."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import polars as pl
import pytest

from core.cluster.inventory import GpuNode
from core.db.session import unit_of_work
from core.errors import InputError
from core.identity import PermissionDenied, load_personas
from core.metrics import water_level as wl
from core.metrics.persistence import read_days, replace_day
from core.metrics.schema import ROLLUP_SCHEMA
from tests.support import clock

PERSONAS = {p.id: p for p in load_personas()}
HQ_OPS, PROV_OPS, EXECUTIVE = PERSONAS["li.na"], PERSONAS["chen.jing"], PERSONAS["wang.qiang"]
EXPECTED = 96
# two nodes of js-pool, a node of no pool (left out) and, in the rollups only, a node the inventory lacks
NODES = [GpuNode("hq-beijing-1", "hq-b1-n1", "hq-lang", "H800-SXM", 2),
         GpuNode("hq-beijing-1", "hq-b1-n2", "hq-mm", "A800-80GB", 2),
         GpuNode("hq-beijing-2", "hq-b2-n1", "hq-ft", "H20", 2),
         GpuNode("js-nanjing", "js-n1", "js-pool", "A800-80GB", 2),
         GpuNode("js-nanjing", "js-n2", "js-pool", "A800-80GB", 1),
         GpuNode("sd-jinan", "sd-n1", None, "A30", 2)]
ROLLUP_HOSTS = [(n.cluster, n.name, n.gpu_product, n.gpus) for n in NODES] + [("hn-zhengzhou", "ghost-n1", "T4", 2)]
FIRST, LAST = clock.month_start(-1), clock.month_start(0) + timedelta(days=4)
# days with rollups: two outside [FIRST, LAST], the others in both months of it
DAYS = [FIRST - timedelta(days=1), FIRST, FIRST + timedelta(days=9), clock.month_start(0) - timedelta(days=1),
        clock.month_start(0), LAST, LAST + timedelta(days=1)]
UNRATED = ("hq-b2-n1", FIRST)  # every row of this node-day has no utilisation: hq-ft's mean is NaN that day


def _rows(rng: random.Random, day) -> list[dict]:
    """One day's rollup rows: per GPU the day's samples split over up to two namespaces and idle
    time, some rows without a utilisation (no sample carried one)."""
    rows = []
    for cluster, host, model, gpus in ROLLUP_HOSTS:
        for slot in range(gpus):
            parts = rng.choice([[""], ["ns-a"], ["ns-a", ""], ["ns-a", "ns-b"], ["ns-b", "ns-c", ""]])
            for ns in parts:
                n = rng.randint(1, EXPECTED // len(parts))
                hours = n * 24 / EXPECTED
                util = None if (host, day) == UNRATED or rng.random() < 0.15 else rng.random()
                rows.append({"day": day, "cluster": cluster, "hostname": host, "uuid": f"{host}-g{slot}",
                             "model": model, "namespace": ns, "mean_util": util, "peak_util": util,
                             "mean_mem": 0.5, "peak_mem": 0.5, "allocated_gpu_hours": hours if ns else 0.0,
                             "used_gpu_hours": (util or 0.0) * hours, "energy_kwh": rng.uniform(0.1, 9.0),
                             "samples": n, "expected_samples": EXPECTED, "coverage": n / EXPECTED})
    return rows


@pytest.fixture
def seeded(ctx):
    rng = random.Random(10)
    for day in DAYS:
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, day, pl.DataFrame(_rows(rng, day), schema=ROLLUP_SCHEMA))
    return ctx


def _reference(ctx, nodes, period: str) -> pl.DataFrame:
    """The polars path the SQL replaces: every row of the range read, then ``trends``."""
    with unit_of_work(ctx.sessions) as s:
        rows = read_days(s, FIRST, LAST)
    return wl.trends(rows, wl.nodes_frame(nodes), period=period)


def _assert_same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.schema == want.schema
    assert got.select("pool", "period").rows() == want.select("pool", "period").rows()
    for col in ("allocated_gpu_hours", "used_gpu_hours", "mean_util"):
        for (pool, period), a, b in zip(got.select("pool", "period").rows(), got[col].to_list(), want[col].to_list()):
            assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9), \
                (col, pool, period, a, b)


@pytest.mark.parametrize("period", ["day", "month"])
@pytest.mark.parametrize("actor", [HQ_OPS, PROV_OPS], ids=["hq_ops", "prov_ops"])
def test_sql_trend_equals_the_polars_path(seeded, period, actor):
    want = _reference(seeded, NODES, period)
    got = wl.trend(sessions=seeded.sessions, actor=actor, nodes=NODES, first=FIRST, last=LAST, period=period)
    _assert_same(got, want)
    # the comparison covers what it should: every pooled node, both months, no row of a node without
    # a known pool, days outside the range left out, and the NaN of a pool-day without a utilisation
    assert set(got["pool"].to_list()) == {"hq-lang", "hq-mm", "hq-ft", "js-pool"}
    periods = set(got["period"].to_list())
    if period == "day":
        assert periods == set(DAYS[1:-1])
        nan = got.filter((pl.col("pool") == "hq-ft") & (pl.col("period") == FIRST))["mean_util"]
        assert nan.len() == 1 and math.isnan(nan[0])
    else:
        assert periods == {clock.month_start(-1), clock.month_start(0)}
    assert got["allocated_gpu_hours"].sum() > 0 and got["mean_util"].drop_nans().len() == got.height - (period == "day")


def test_sql_trend_edges_match_the_polars_path(seeded):
    kw = dict(sessions=seeded.sessions, actor=HQ_OPS, first=FIRST, last=LAST)
    # no inventory node, or none with a pool: nothing to group, as the polars path
    for nodes in ([], [NODES[-1]]):
        got = wl.trend(nodes=nodes, **kw)
        assert got.height == 0 and got.schema == _reference(seeded, nodes, "day").schema
    # a single day; a range with no rollups
    one = wl.trend(sessions=seeded.sessions, actor=HQ_OPS, nodes=NODES, first=LAST, last=LAST)
    assert set(one["period"].to_list()) == {LAST} and one.height == 4
    empty = wl.trend(sessions=seeded.sessions, actor=HQ_OPS, nodes=NODES, first=LAST + timedelta(days=2),
                     last=LAST + timedelta(days=9))
    assert empty.height == 0
    with pytest.raises(InputError) as bad:
        wl.trend(nodes=NODES, period="week", **kw)
    assert bad.value.field == "period"
    with pytest.raises(PermissionDenied):
        wl.trend(sessions=seeded.sessions, actor=EXECUTIVE, nodes=NODES, first=FIRST, last=LAST)
