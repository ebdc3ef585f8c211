"""Water level: totals, allocated vs in use, available, reserve, heat map, fragmentation and trends
on hand-computed fixtures; the live snapshot's one metrics call and its stale fallback."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

from core.cluster.inventory import GpuNode
from core.errors import InputError
from core.identity import PermissionDenied, load_personas
from core.metrics import water_level as wl
from core.metrics.prometheus import MetricsUnavailable
from core.org import Org, Pool

TS = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def _org() -> Org:
    pools = {
        "a": Pool("a", "training_language", "c1", "A800-80GB", 8, "parallel_fs", gpus_per_node=4),
        "r": Pool("r", "strategic_reserve", "c1", "H800-SXM", 8, "parallel_fs"),
        "d": Pool("d", "dynamic_reserve", "c2", "A800-80GB", 4, "parallel_fs"),
        "x": Pool("x", "inference", "c2", "L20", 16, "object"),  # no node carries it
    }
    return Org(units={}, departments={}, projects={}, clusters={}, pools=pools)


def _nodes() -> pl.DataFrame:
    return wl.nodes_frame([
        GpuNode("c1", "a-0", "a", "A800-80GB", 4), GpuNode("c1", "a-1", "a", "A800-80GB", 4),
        GpuNode("c1", "r-0", "r", "H800-SXM", 8), GpuNode("c2", "d-0", "d", "A800-80GB", 4),
    ])


def _latest(rows: list[tuple[str, str, str, float]]) -> pl.DataFrame:
    """(hostname, gpu slot, namespace, util) → a latest() frame."""
    return pl.DataFrame({
        "ts": [TS] * len(rows), "hostname": [r[0] for r in rows], "gpu": [r[1] for r in rows],
        "uuid": [f"{r[0]}-{r[1]}" for r in rows], "namespace": [r[2] for r in rows], "util": [r[3] for r in rows],
    })


LATEST = _latest([
    ("a-0", "0", "job", 0.95), ("a-0", "1", "job", 0.10), ("a-0", "2", "job", 0.05), ("a-0", "3", "", 0.0),
    ("a-1", "0", "", 0.0), ("a-1", "1", "", 0.0), ("a-1", "2", "", 0.0), ("a-1", "3", "", 0.0),
    ("r-0", "0", "emergency", 0.50),
])


def test_totals_come_from_the_inventory_nodes_and_fall_back_to_the_org_size():
    totals = dict(wl.pool_totals(_org(), _nodes()).select("pool", "total").iter_rows())
    assert totals == {"a": 8, "r": 8, "d": 4, "x": 16}


def test_in_use_counts_gpus_at_or_above_the_threshold_not_allocations():
    # a-0: 0.95 and 0.10 reach 0.10; 0.05 does not; r-0 at 0.50 counts for the reserve pool
    used = wl.usage_by_pool(LATEST, _nodes(), 0.10, owned={"job"})
    assert {p: u for p, (u, _) in used.items()} == {"a": 2, "r": 1}
    levels = wl.pool_levels(_org(), wl.pool_totals(_org(), _nodes()), {"a": 6}, used)
    a = levels.filter(pl.col("pool") == "a").row(0, named=True)
    assert (a["allocated"], a["in_use"], a["available"], a["in_use_unallocated"]) == (6, 2, 2, 0)


def test_busy_gpus_of_namespaces_no_allocation_owns_are_in_use_without_an_allocation():
    used = wl.usage_by_pool(LATEST, _nodes(), 0.10, owned={"job"})
    assert used == {"a": (2, 0), "r": (1, 1)}  # "emergency" is owned by no allocation
    assert wl.usage_by_pool(LATEST, _nodes(), 0.10) == {"a": (2, 2), "r": (1, 1)}
    listed = wl.unmanaged(LATEST, _nodes(), 0.10, {"job"})
    assert listed.rows() == [("r", "emergency", 1)]


def test_available_is_never_negative_when_allocations_exceed_the_pool():
    levels = wl.pool_levels(_org(), wl.pool_totals(_org(), _nodes()), {"a": 9}, {})
    a = levels.filter(pl.col("pool") == "a").row(0, named=True)
    assert a["allocated"] == 9 and a["available"] == 0


def test_unallocated_gpus_of_reserve_pools_are_reserved_not_available():
    levels = wl.pool_levels(_org(), wl.pool_totals(_org(), _nodes()), {"a": 3, "r": 2}, {"a": (2, 0), "r": (1, 1)})
    reserved = dict(levels.select("pool", "reserved").iter_rows())
    assert reserved == {"a": 0, "r": 6, "d": 4, "x": 0}
    available = dict(levels.select("pool", "available").iter_rows())
    assert available == {"a": 5, "r": 0, "d": 0, "x": 16}  # total − allocated − reserved
    totals = wl.level_totals(levels)
    assert totals == {"total": 36, "allocated": 5, "reserved": 10, "available": 21, "in_use": 3,
                      "in_use_unallocated": 1}
    by_cluster = {r["cluster"]: r for r in wl.levels_by(levels, "cluster").iter_rows(named=True)}
    assert by_cluster["c1"]["total"] == 16 and by_cluster["c2"]["reserved"] == 4
    by_model = {r["model"]: r for r in wl.levels_by(levels, "model").iter_rows(named=True)}
    assert by_model["A800-80GB"]["total"] == 12


def test_heat_map_marks_busy_idle_unallocated_and_missing_slots():
    heat = wl.heat_map(LATEST, _nodes(), 0.10)
    status = {(h, s): st for h, s, st in heat.select("hostname", "slot", "status").iter_rows()}
    assert status[("a-0", 0)] == "busy" and status[("a-0", 1)] == "busy"
    assert status[("a-0", 2)] == "idle" and status[("a-0", 3)] == "unallocated"
    assert status[("r-0", 0)] == "busy" and status[("r-0", 7)] == "no_data"
    assert status[("d-0", 0)] == "no_data"
    assert heat.height == 20  # every slot of every node


def test_a_pool_of_more_nodes_than_rows_is_shown_in_groups_of_neighbouring_nodes():
    heat = wl.heat_map(LATEST, _nodes(), 0.10)
    assert wl.node_groups(heat, "a", 60) == [["a-0"], ["a-1"]]  # they fit: one node a row
    nodes = wl.nodes_frame([GpuNode("c1", f"n-{i:02d}", "big", "A800-80GB", 2) for i in range(7)])
    big = wl.heat_map(_latest([("n-00", "0", "job", 0.9), ("n-00", "1", "job", 0.05), ("n-01", "0", "", 0.0),
                               ("n-06", "1", "job", 0.5)]), nodes, 0.10)
    groups = wl.node_groups(big, "big", 3)
    assert groups == [["n-00", "n-01", "n-02"], ["n-03", "n-04", "n-05"], ["n-06"]]  # ⌈7 / 3⌉ = 3 nodes a row
    rows = {(r["group"], r["slot"]): r for r in wl.heat_by_group(big, groups).iter_rows(named=True)}
    assert rows[(0, 0)]["util"] == pytest.approx(0.9) and rows[(0, 0)]["busy"] == 1 and rows[(0, 0)]["unallocated"] == 1
    assert rows[(0, 1)]["util"] == pytest.approx(0.05) and rows[(0, 1)]["idle"] == 1  # a workload below the threshold
    assert rows[(1, 0)]["util"] is None and rows[(1, 0)]["no_data"] == 3  # nothing running: no colour
    assert sum(r[s] for r in rows.values() for s in wl.HEAT_STATUSES) == 14  # every slot counted once


def test_numbered_nodes_are_grouped_in_number_order_past_a_thousand():
    """hq-lang at 100,800 GPUs has nodes 000 to 3199: as text, node-1000 sorted between node-099 and
    node-100, so a group read "node-054 – 1006"."""
    nodes = wl.nodes_frame([GpuNode("c1", f"pool-node-{i:03d}", "big", "A800-80GB", 1) for i in range(1200)])
    heat = wl.heat_map(_latest([("pool-node-000", "0", "job", 0.5)]), nodes, 0.10)
    groups = wl.node_groups(heat, "big", 12)
    assert [(g[0], g[-1]) for g in groups[:2]] == [("pool-node-000", "pool-node-099"), ("pool-node-100", "pool-node-199")]
    assert groups[-1][-1] == "pool-node-1199" and sum(len(g) for g in groups) == 1200
    assert sorted(["n-10", "n-9", "n-100", "m-2"], key=wl.natural_key) == ["m-2", "n-9", "n-10", "n-100"]


def test_fragmentation_counts_whole_requests_per_node():
    free = pl.DataFrame({"pool": ["p"] * 4, "hostname": ["n0", "n1", "n2", "n3"], "gpus": [8] * 4,
                         "free": [3, 2, 8, 0]}, schema=wl.FREE_SCHEMA)
    frag = {s: (f, st) for _, s, f, _, st in wl.fragmentation(free, [1, 2, 4, 8]).iter_rows()}
    # 1: 3+2+8 = 13; 2: 1+1+4 = 6; 4: 0+0+2 = 2; 8: 1 (5 GPUs stranded)
    assert frag == {1: (13, 0), 2: (6, 1), 4: (2, 5), 8: (1, 5)}


def test_free_slots_are_the_sampled_gpus_without_a_workload():
    free = wl.free_per_node(wl.heat_map(LATEST, _nodes(), 0.10))
    assert dict(free.select("hostname", "free").iter_rows()) == {"a-0": 1, "a-1": 4, "r-0": 0, "d-0": 0}
    frag = wl.fragmentation(free, [4]).filter(pl.col("pool") == "a").row(0, named=True)
    assert (frag["fits"], frag["free_gpus"], frag["stranded"]) == (1, 5, 1)


def _rollup(day: date, host: str, ns: str, mean: float, samples: int, alloc: float, used: float) -> dict:
    return {"day": day, "cluster": "c1", "hostname": host, "uuid": f"{host}-u", "model": "A800-80GB", "namespace": ns,
            "mean_util": mean, "peak_util": mean, "mean_mem": 0.5, "peak_mem": 0.5, "allocated_gpu_hours": alloc,
            "used_gpu_hours": used, "energy_kwh": 1.0, "samples": samples, "expected_samples": 1440, "coverage": 1.0}


def test_trends_sum_hours_and_weight_utilisation_by_samples_per_day_and_month():
    from core.metrics.schema import ROLLUP_SCHEMA

    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)
    rows = pl.DataFrame([
        _rollup(d1, "a-0", "job", 0.8, 1440, 24.0, 19.2),
        _rollup(d1, "a-1", "", 0.0, 720, 0.0, 0.0),
        _rollup(d2, "a-0", "job", 0.5, 1440, 24.0, 12.0),
        _rollup(d2, "zz", "job", 0.9, 1440, 24.0, 21.6),  # a node of no known pool
    ], schema=ROLLUP_SCHEMA)
    daily = {r["period"]: r for r in wl.trends(rows, _nodes()).iter_rows(named=True)}
    assert daily[d1]["allocated_gpu_hours"] == 24.0 and daily[d1]["used_gpu_hours"] == pytest.approx(19.2)
    assert daily[d1]["mean_util"] == pytest.approx(0.8 * 1440 / 2160)
    monthly = wl.trends(rows, _nodes(), period="month").row(0, named=True)
    assert monthly["period"] == d1 and monthly["allocated_gpu_hours"] == 48.0


class _CountingSource:
    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame, self.calls, self.fail = frame, 0, False

    def latest(self, at=None):
        self.calls += 1
        if self.fail:
            raise MetricsUnavailable("prometheus.unreachable", cluster="c1", url="http://x", reason="down")
        return self.frame


@pytest.fixture
def sessions(tmp_path):
    from core.context import build
    from core.db.migrate import upgrade
    from core.db.session import make_engine

    url = f"sqlite:///{tmp_path / 'wl.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    context = build(url)
    yield context.sessions
    context.engine.dispose()


def _who(pid: str):
    return next(p for p in load_personas() if p.id == pid)


def test_snapshot_reads_the_metrics_once_and_falls_back_to_the_last_good_frame(sessions):
    source, cache = _CountingSource(LATEST), {}
    nodes = [GpuNode("hq-beijing-1", "a-0", "hq-lang", "H800-SXM", 4)]
    first = wl.snapshot(sessions=sessions, actor=_who("li.na"), source=source, nodes=nodes, cache=cache)
    assert source.calls == 1 and not first.stale and first.banner is None
    assert first.data_as_of == TS
    source.fail = True
    later = wl.snapshot(sessions=sessions, actor=_who("zhao.min"), source=source, nodes=nodes, cache=cache)
    assert source.calls == 2 and later.stale and later.banner.key == "prometheus.stale"
    assert later.totals == first.totals


@pytest.mark.parametrize("who", ["zhang.wei", "wang.qiang", "sun.li"])
def test_applicants_executives_and_the_committee_may_not_read_the_live_water_level(sessions, who):
    with pytest.raises(PermissionDenied):
        wl.snapshot(sessions=sessions, actor=_who(who), source=_CountingSource(LATEST), nodes=[], cache={})


def test_threshold_and_shapes_come_from_the_data_file_only(sessions, tmp_path, monkeypatch):
    import shutil

    import yaml

    from core.config import DATA_DIR

    raw = yaml.safe_load((DATA_DIR / "metrics_thresholds.yaml").read_text(encoding="utf-8"))["water_level"]
    assert wl.in_use_threshold() == raw["in_use_util"] and wl.request_shapes() == tuple(raw["request_shapes"])
    nodes = [GpuNode("hq-beijing-1", "a-0", "hq-lang", "H800-SXM", 4)]
    snap = wl.snapshot(sessions=sessions, actor=_who("li.na"), source=_CountingSource(LATEST), nodes=nodes, cache={})
    assert (snap.in_use_util, snap.shapes) == (raw["in_use_util"], tuple(raw["request_shapes"]))
    # a reading built without those figures takes them from the file too
    bare = wl.WaterLevel(*(getattr(snap, f) for f in ("pools", "clusters", "models", "totals", "heat", "free",
                                                       "fragments", "fetched_at", "data_as_of", "stale")))
    assert (bare.in_use_util, bare.shapes) == (snap.in_use_util, snap.shapes)

    # change the file: the snapshot follows (a literal copy in the code would not)
    doc = yaml.safe_load((DATA_DIR / "metrics_thresholds.yaml").read_text(encoding="utf-8"))
    doc["water_level"] |= {"in_use_util": 0.5, "request_shapes": [1, 3]}
    shutil.copytree(DATA_DIR, tmp_path / "data")
    (tmp_path / "data" / "metrics_thresholds.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(tmp_path / "data"))
    changed = wl.snapshot(sessions=sessions, actor=_who("li.na"), source=_CountingSource(LATEST), nodes=nodes, cache={})
    assert (changed.in_use_util, changed.shapes) == (0.5, (1, 3))
    assert sorted(set(changed.fragments["shape"].to_list())) == [1, 3]
    assert wl.WaterLevel(*(getattr(snap, f) for f in ("pools", "clusters", "models", "totals", "heat", "free",
                                                       "fragments", "fetched_at", "data_as_of", "stale"))).shapes == (1, 3)


@pytest.mark.parametrize("rows", [0, "sixty", None])
def test_a_bad_heat_map_row_limit_names_its_entry(rows, tmp_path, monkeypatch):
    import shutil

    import yaml

    from core.config import DATA_DIR

    doc = yaml.safe_load((DATA_DIR / "metrics_thresholds.yaml").read_text(encoding="utf-8"))
    doc["water_level"]["heat_map_max_rows"] = rows
    shutil.copytree(DATA_DIR, tmp_path / "data")
    (tmp_path / "data" / "metrics_thresholds.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(InputError) as raised:
        wl.load_thresholds()
    assert raised.value.params["entry"] == "water_level.heat_map_max_rows"


def test_the_fleet_manifest_is_read_again_only_when_it_changes(tmp_path, monkeypatch):
    """A 100,800-GPU manifest takes a second to read; its nodes are kept until the file changes."""
    from core.metrics import fleet, sources

    day = date(2026, 3, 1)
    fleet.write_samples(tmp_path, start=day, days=1, step_s=43200, scale=0.01)
    reads = []
    real = fleet.load_manifest
    monkeypatch.setattr(fleet, "load_manifest", lambda root: reads.append(root) or real(root))
    first = sources.fleet_nodes(tmp_path)
    assert sources.fleet_nodes(tmp_path) == first and len(reads) == 1
    fleet.write_samples(tmp_path, start=day, days=1, step_s=43200, scale=0.02)  # a larger fleet, written again
    again = sources.fleet_nodes(tmp_path)
    assert len(reads) == 2 and sum(n.gpus for n in again) > sum(n.gpus for n in first)
    assert sources.fleet_nodes(tmp_path / "nothing") is None
