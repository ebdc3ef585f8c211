"""One fleet, every page: the water level, the published board, the Apply check and the approvals
show the same capacity figures (core/capacity_figures.py), and each reads them from the one
definition — a page with arithmetic of its own fails here.

The fleet: hq-ft (96 GPUs) holds two allocations, 16 GPUs of namespace team-a (busy) and 8 of
team-b (idle), and runs a legacy service old-svc on 4 busy GPUs no allocation owns; the strategic
reserve hq-reserve (64 GPUs) holds one allocation of 8 busy GPUs. Every allocation started before
last month and runs past today, and every GPU was as busy on each day of last month as it is now,
so last month's means on the board equal today's figures.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from sqlalchemy import select

from core import capacity_figures as cf
from core.clock import as_of
from core.db.session import unit_of_work
from core.lifecycle import services as lifecycle
from core.lifecycle.persistence import AllocationRow
from core.metrics import water_level as wl
from core.metrics.persistence import replace_day
from core.metrics.schema import ROLLUP_SCHEMA
from core.metrics.sources import inventory_nodes
from core.reports import service as reports
from tests.support import clock
from tests.support.forms import RESERVE, TRAINING
from tests.support.people import APPLICANT, COMMITTEE, DEPT_HEAD, EXEC, HQ_OPS

POOL, RESERVE_POOL = "hq-ft", "hq-reserve"
# namespace → (pool, GPUs, utilisation); "" = GPUs with no workload
WORKLOADS = {"team-a": (POOL, 16, 0.90), "team-b": (POOL, 8, 0.02), "old-svc": (POOL, 4, 0.50),
             "": (POOL, 4, 0.0), "reserve-job": (RESERVE_POOL, 8, 0.80)}
EXPECTED = {
    POOL: {"total": 96, "allocated": 24, "reserved": 0, "available": 72, "in_use": 20, "in_use_unallocated": 4},
    RESERVE_POOL: {"total": 64, "allocated": 8, "reserved": 56, "available": 0, "in_use": 8, "in_use_unallocated": 0},
}


def _grant(ctx, form: dict, deciders, namespace: str, start, days: int) -> None:
    """Apply on ``start`` for ``days`` days, take every step, and bind the namespace."""
    with as_of(start):
        view = lifecycle.submit(sessions=ctx.sessions, actor=APPLICANT,
                                form={**form, "start_date": start.isoformat(), "duration_days": days})
        for actor in deciders:
            view = lifecycle.decide(sessions=ctx.sessions, actor=actor, request_id=view["id"], decision="approve",
                                    reason="capacity figures fixture")
    assert view["status"] in ("approved", "adjusted", "provisioning", "active"), view["status"]
    with unit_of_work(ctx.sessions) as s:
        s.scalars(select(AllocationRow).where(AllocationRow.request_id == view["id"])).one().namespace = namespace


def _gpus(nodes) -> list[dict]:
    """One GPU per slot of the pools' nodes, handed out to the workloads in order."""
    slots = {p: [(n, i) for n in nodes if n.pool == p for i in range(n.gpus)] for p in (POOL, RESERVE_POOL)}
    out = []
    for ns, (pool, count, util) in WORKLOADS.items():
        for node, index in (slots[pool].pop(0) for _ in range(count)):
            out.append({"cluster": node.cluster, "hostname": node.name, "gpu": str(index), "model": node.gpu_product,
                        "uuid": f"{node.name}-{index}", "namespace": ns, "util": util})
    return out


class _Latest:
    """A metrics source whose latest reading is the fixture's GPUs."""

    def __init__(self, gpus: list[dict]) -> None:
        ts = datetime.combine(clock.today(), datetime.min.time(), tzinfo=timezone.utc)
        self.frame = pl.DataFrame([{**g, "ts": ts} for g in gpus])

    def latest(self, at=None):
        return self.frame


def _store_last_month(ctx, gpus: list[dict]) -> None:
    first = clock.month_start(-1)
    day = first
    with unit_of_work(ctx.sessions) as s:
        while day < clock.month_start(0):
            rows = [{"day": day, "cluster": g["cluster"], "hostname": g["hostname"], "uuid": g["uuid"],
                     "model": g["model"], "namespace": g["namespace"], "mean_util": g["util"],
                     "peak_util": g["util"], "mean_mem": 0.5, "peak_mem": 0.5,
                     "allocated_gpu_hours": 24.0 if g["namespace"] else 0.0, "used_gpu_hours": 24.0 * g["util"],
                     "energy_kwh": 1.0, "samples": 1440, "expected_samples": 1440, "coverage": 1.0} for g in gpus]
            replace_day(s, day, pl.DataFrame(rows, schema=ROLLUP_SCHEMA))
            day += timedelta(days=1)


@pytest.fixture
def fleet(ctx, tmp_path, monkeypatch):
    """The fixture's allocations, latest reading and last month's rollups; a request waiting for HQ ops."""
    monkeypatch.setenv("COMPUTELOOP_METRICS_DIR", str(tmp_path / "no-samples"))  # nodes made up from data/org.yaml
    monkeypatch.delenv("COMPUTELOOP_PROMETHEUS_URLS", raising=False)
    start = clock.month_start(-1) - timedelta(days=5)
    days = (clock.today() - start).days + 30
    _grant(ctx, {**TRAINING, "requested_gpus": 16, "gpus_per_run": 16}, [HQ_OPS, DEPT_HEAD], "team-a", start, days)
    _grant(ctx, {**TRAINING, "requested_gpus": 8, "gpus_per_run": 8}, [HQ_OPS, DEPT_HEAD], "team-b", start, days)
    _grant(ctx, {**RESERVE, "gpu_model": "H800-SXM"}, [COMMITTEE, EXEC], "reserve-job", start, days)
    nodes = inventory_nodes()
    gpus = _gpus(nodes)
    _store_last_month(ctx, gpus)
    waiting = lifecycle.submit(sessions=ctx.sessions, actor=APPLICANT,
                               form={**TRAINING, "requested_gpus": 16, "gpus_per_run": 16, "duration_days": 10})
    assert waiting["status"] in ("submitted", "in_review")
    return {"nodes": nodes, "source": _Latest(gpus), "waiting": waiting["id"]}


def _water_level(ctx, fleet) -> dict[str, dict]:
    snap = wl.snapshot(sessions=ctx.sessions, actor=HQ_OPS, source=fleet["source"], nodes=fleet["nodes"], cache={})
    return {r["pool"]: {k: r[k] for k in cf.FIGURES} for r in snap.pools.iter_rows(named=True)}


def _board(ctx) -> dict[str, dict]:
    water = reports.preview(sessions=ctx.sessions, actor=HQ_OPS, month=clock.month(-1), scope="HQ")["water_level"]
    return {r["pool"]: {k: r[k] for k in cf.FIGURES} for r in water["by_pool"]}


def _apply_check(ctx, form: dict) -> int:
    """The free GPUs the Apply check reports for a one-day request from today."""
    checked = lifecycle.precheck(sessions=ctx.sessions, actor=APPLICANT,
                                 form={**form, "requested_gpus": 1, "gpus_per_run": 1, "duration_days": 1,
                                       "start_date": clock.iso(0)})
    return checked["capacity"]["free"]


def _approvals(ctx, request_id: int) -> dict:
    items = {i["id"]: i for i in lifecycle.feasibility(sessions=ctx.sessions, actor=HQ_OPS, request_id=request_id)}
    return items["capacity"]["params"]


def _every_page(ctx, fleet) -> dict[str, dict]:
    water, board = _water_level(ctx, fleet), _board(ctx)
    return {"water": water, "board": board, "apply": {POOL: _apply_check(ctx, TRAINING),
                                                       RESERVE_POOL: _apply_check(ctx, {**RESERVE,
                                                                                        "gpu_model": "H800-SXM"})},
            "approvals": _approvals(ctx, fleet["waiting"])}


def test_every_page_shows_the_same_capacity_figures_of_one_fleet(ctx, fleet):
    pages = _every_page(ctx, fleet)
    for pool, expected in EXPECTED.items():
        assert pages["water"][pool] == expected, ("water level", pool)
        assert pages["board"][pool] == expected, ("board (last month's means)", pool)
    # the Apply check: an ordinary pool's free GPUs are its available ones; a reserve's, its reserve
    assert pages["apply"] == {POOL: EXPECTED[POOL]["available"], RESERVE_POOL: EXPECTED[RESERVE_POOL]["reserved"]}
    # the approvals' checklist: the pool's figures today, and the room over the request's window
    shown = {k: pages["approvals"][k] for k in ("total", "allocated", "reserved", "available")}
    assert shown == {k: EXPECTED[POOL][k] for k in shown} and pages["approvals"]["free"] == EXPECTED[POOL]["available"]


def test_every_page_reads_each_figure_from_the_one_definition(ctx, fleet, monkeypatch):
    """Change the definitions of total and reserved: every page follows (none has its own arithmetic)."""
    real_total = cf.total

    def total(pool, on_nodes=None):
        return real_total(pool, on_nodes) - 2

    monkeypatch.setattr(cf, "total", total)
    monkeypatch.setattr(cf, "reserved", lambda pool, size, allocated: 1)
    pages = _every_page(ctx, fleet)
    for pool in (POOL, RESERVE_POOL):
        expected = {**EXPECTED[pool], "total": EXPECTED[pool]["total"] - 2, "reserved": 1,
                    "available": EXPECTED[pool]["total"] - 2 - EXPECTED[pool]["allocated"] - 1}
        assert pages["water"][pool] == expected, ("water level", pool)
        assert pages["board"][pool] == expected, ("board", pool)
    assert pages["apply"][POOL] == EXPECTED[POOL]["available"] - 2  # the size the check grants against
    assert {k: pages["approvals"][k] for k in ("total", "reserved", "available")} == {
        "total": 94, "reserved": 1, "available": 94 - 24 - 1}
