"""AppTest on the demo data of ``make run``: the demo's allocations and its GPU samples describe one
fleet, the water level says what each figure counts, and it names the namespaces in use without an
allocation."""

from __future__ import annotations

import polars as pl

from core import capacity_figures as cf
from core.context import build
from core.demo_fleet import seed_fleet_allocations
from core.demo_history import run_namespaces
from core.metrics import water_level as wl
from core.metrics.sources import inventory_nodes, metrics_source
from tests.support import app_scenarios as scenarios
from tests.support.app_run import no_exceptions, open_page, text


def _snapshot(demo_database):
    source = metrics_source()
    return wl.snapshot(sessions=build(demo_database).sessions, actor=scenarios.persona("li.na"), source=source,
                       nodes=inventory_nodes(source), cache={})


def test_the_demo_grants_the_namespaces_it_fills_with_usage_but_a_few(demo_database):
    snap = _snapshot(demo_database)
    t = snap.totals
    # most busy GPUs belong to an allocation; the busy GPUs of allocations are inside "allocated"
    assert 0 < t["in_use_unallocated"] < t["in_use"] / 4 and t["allocated"] >= t["in_use"] - t["in_use_unallocated"]
    for row in snap.pools.iter_rows(named=True):
        assert row["in_use"] - row["in_use_unallocated"] <= row["allocated"], row["pool"]
        assert row["available"] == max(row["total"] - row["allocated"] - row["reserved"], 0), row["pool"]
    # last month's training runs were returned today, and the fleet still runs them: legacy usage
    runs = {bound[0] for bound in run_namespaces() if bound}
    assert runs <= set(snap.unmanaged["namespace"].to_list())
    assert snap.unmanaged.filter(~pl.col("namespace").is_in(sorted(runs)))["gpus"].sum() <= 8
    assert seed_fleet_allocations(build(demo_database).sessions) == {"granted": 0, "left_out": 0}  # once


def test_the_demo_fleets_people_are_known_by_name(demo_database):
    """The fleet's applicants and deciders who are not personas are remembered as sign-in would,
    so pages show 林峰, not lin.feng."""
    from core.demo_fleet import APPLICANTS
    from core.people import names

    known = names(build(demo_database).sessions)
    for pid, name in APPLICANTS.values():
        if pid not in scenarios.people():
            assert known.get(pid) == name, pid


def test_the_water_level_says_what_each_figure_counts_and_names_the_legacy_namespaces(demo_database):
    snap = _snapshot(demo_database)
    for lang in ("zh-CN", "en"):
        at = open_page("app_pages/pools.py", persona="li.na", lang=lang)
        no_exceptions(at)
        tiles = {m.label: m for m in at.metric}
        threshold = round(snap.in_use_util * 100)
        for key in cf.FIGURES:
            tile = tiles[text(f"pools.level.{key}", lang)]
            assert tile.value == f"{snap.totals[key]:,}", key
            assert tile.proto.help == text(f"capacity.help.{key}", lang, threshold=threshold), key
        (legacy,) = [d.value for d in at.dataframe if text("pools.col.busy_gpus", lang) in d.value.columns]
        assert set(legacy[text("pools.axis.namespace", lang)]) == set(snap.unmanaged["namespace"].to_list())
        assert any(text("pools.unmanaged_caption", lang) == c.value for c in at.caption)
