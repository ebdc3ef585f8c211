"""A hand-computed month (March of a fixed year) of rollups, allocations, requests, failures and training
jobs for the monthly report's pure builder. The report of a named month does not depend on the clock,
so these dates are fixed on purpose: every expected figure in the report tests is computed by hand
from them."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl

from core.db.session import unit_of_work
from core.metrics.persistence import replace_day
from core.metrics.schema import ROLLUP_SCHEMA


PRICES = {"H800-SXM": (30.0, True), "A800-80GB": (15.0, True), "H20": (10.0, False), "A800-80GB-JS": (1.0, True)}


SETTINGS = {"top_n": 5, "min_gpu_hours_for_ranking": 24, "idle_day_util": 0.05, "trend_months": 2,
            "min_coverage_for_trends": 0.6}


def rollup_row(day, uuid, cluster, model, ns, util, mem, samples=1440, energy=1.0):
    hours = samples / 60
    return {"day": day, "cluster": cluster, "hostname": f"{cluster}-n1", "uuid": uuid, "model": model, "namespace": ns,
            "mean_util": util, "peak_util": util, "mean_mem": mem, "peak_mem": mem,
            "allocated_gpu_hours": hours if ns else 0.0, "used_gpu_hours": util * hours, "energy_kwh": energy,
            "samples": samples, "expected_samples": 1440, "coverage": samples / 1440}


D1, D2 = date(2026, 3, 1), date(2026, 3, 2)


ROWS = pl.DataFrame([
    rollup_row(D1, "u1", "hq-beijing-1", "H800-SXM", "ns-llm", 0.8, 0.5, energy=10),
    rollup_row(D2, "u1", "hq-beijing-1", "H800-SXM", "ns-llm", 0.6, 0.7, energy=10),
    rollup_row(D1, "u2", "hq-beijing-2", "A800-80GB", "ns-orphan", 0.02, 0.1, samples=720, energy=2),
    rollup_row(D2, "u2", "hq-beijing-2", "A800-80GB", "ns-orphan", 0.03, 0.1, energy=3),
    rollup_row(D1, "u3", "hq-beijing-2", "H20", "", 0.0, 0.0, energy=1),
    rollup_row(D1, "j1", "js-nanjing", "A800-80GB", "ns-js", 0.9, 0.9, energy=50),          # other scope
    rollup_row(date(2026, 2, 10), "u1", "hq-beijing-1", "H800-SXM", "ns-llm", 0.5, 0.5),    # other month
], schema=ROLLUP_SCHEMA)


ALLOCS = [{"request_id": 1, "pool": "hq-lang", "gpus": 1, "requested_gpus": 2, "namespace": "ns-llm",
           "starts_on": D1, "ends_on": date(2026, 3, 3), "released_on": None, "project": "P-LLM-01",
           "department": "digital", "owner": "zhang.wei", "demand_type": "training"}]


def at(d, h=0):
    return datetime(2026, d[0], d[1], h, tzinfo=timezone.utc)


REQUESTS = [
    {"id": 1, "number": "R1", "pool": "hq-lang", "project": "P-LLM-01", "submitted_at": at((3, 1)),
     "approved_at": at((3, 1), 6), "active_at": at((3, 1), 7), "provisioning_failed_at": None},
    {"id": 2, "number": "R2", "pool": "hq-ft", "project": "P-EXP-05", "submitted_at": at((2, 27)),
     "approved_at": at((3, 2)), "active_at": None, "provisioning_failed_at": at((3, 2), 1)},
    {"id": 3, "number": "R3", "pool": "js-pool", "project": "P-JS-06", "submitted_at": at((3, 1)),
     "approved_at": at((3, 5)), "active_at": None, "provisioning_failed_at": at((3, 6))},
]


# Failed provisioning runs (audit events): request 2 failed twice and its third run died; request 3
# is another scope's; request 1's failure is February's; request 99 is unknown.
FAILURES = [
    {"request_id": 2, "at": at((3, 2), 1), "cause": "failed", "step": "Namespace/ns-exp", "attempt": 1},
    {"request_id": 2, "at": at((3, 2), 5), "cause": "failed", "step": "ResourceQuota/ns-exp", "attempt": 2},
    {"request_id": 2, "at": at((3, 3), 9), "cause": "interrupted", "step": "interrupted", "attempt": None},
    {"request_id": 3, "at": at((3, 6)), "cause": "failed", "step": "Namespace/ns-js", "attempt": 1},
    {"request_id": 1, "at": at((2, 28), 23), "cause": "failed", "step": "Namespace/ns-llm", "attempt": 1},
    {"request_id": 99, "at": at((3, 4)), "cause": "failed", "step": "Namespace/x", "attempt": 1},
]


def job_rows():
    rows = []
    for d in (date(2026, 2, 26), date(2026, 2, 27), date(2026, 2, 28)):       # 02-26 is before job A started
        for u in ("a1", "a2"):
            rows.append(rollup_row(d, u, "hq-beijing-1", "H800-SXM", "ns-a", 0.9, 0.8, energy=5))
    history = pl.DataFrame(rows, schema=ROLLUP_SCHEMA)
    rows = []
    for day in range(1, 6):                                                   # 03-05 is after job A ended
        for u in ("a1", "a2"):
            rows.append(rollup_row(date(2026, 3, day), u, "hq-beijing-1", "H800-SXM", "ns-a", 0.9, 0.8, energy=5))
    for day in (10, 11, 12):                                                  # job B released on 03-12
        rows.append(rollup_row(date(2026, 3, day), "b1", "hq-beijing-2", "H20", "ns-b", 0.5, 0.5, energy=3))
    rows.append(rollup_row(date(2026, 3, 10), "c1", "hq-beijing-2", "L20", "ns-c", 0.5, 0.5, energy=99))
    return history, pl.DataFrame(rows, schema=ROLLUP_SCHEMA)


def job(rid, ns, pool, gpus, start, end, released=None, kind="training"):
    return {"request_id": rid, "number": f"CR-{rid}", "pool": pool, "gpus": gpus, "requested_gpus": gpus,
            "namespace": ns, "starts_on": start, "ends_on": end, "released_on": released, "project": "P-LLM-01",
            "department": "digital", "owner": "zhang.wei", "demand_type": kind}


JOBS = [
    job(11, "ns-a", "hq-lang", 2, date(2026, 2, 27), date(2026, 3, 5)),
    job(12, "ns-b", "hq-ft", 1, date(2026, 3, 10), date(2026, 3, 17), released=date(2026, 3, 12)),
    job(13, "ns-c", "hq-inf", 1, date(2026, 3, 1), date(2026, 3, 31), kind="inference"),   # not training
    job(14, "ns-d", "js-pool", 1, date(2026, 3, 1), date(2026, 3, 31)),                    # other scope
    job(15, "ns-e", "hq-ft", 1, date(2026, 4, 2), date(2026, 4, 9)),                       # after the month
    job(16, "ns-f", "hq-ft", 4, date(2026, 3, 20), date(2026, 3, 25)),                     # no metrics at all
]


RESULTS = {
    11: [{"metric": "accuracy", "value": 0.5, "higher_is_better": True, "dataset": "old", "baseline": None,
          "improvement": None, "run": "r0", "recorded_at": "2026-03-02T00:00:00+00:00"},
         {"metric": "eval_loss", "value": 1.8, "higher_is_better": False, "dataset": "held-out", "baseline": 2.3,
          "improvement": 0.5, "run": "r1", "recorded_at": "2026-03-06T00:00:00+00:00"}],
    16: [{"metric": "accuracy", "value": 0.70, "higher_is_better": True, "dataset": "C-Eval", "baseline": 0.75,
          "improvement": -0.05, "run": "", "recorded_at": "2026-03-26T00:00:00+00:00"}],
}


def stored_row(day, uuid, ns, util):
    """A stored rollup row of one H800 GPU in hq-beijing-1 (for the report service tests)."""
    return {"day": day, "cluster": "hq-beijing-1", "hostname": "n1", "uuid": uuid, "model": "H800-SXM", "namespace": ns,
            "mean_util": util, "peak_util": util, "mean_mem": 0.5, "peak_mem": 0.5, "allocated_gpu_hours": 24.0 if ns else 0.0,
            "used_gpu_hours": 24.0 * util, "energy_kwh": 5.0, "samples": 1440, "expected_samples": 1440, "coverage": 1.0}


def seed_rollups(ctx):
    """Two days of March (two GPUs, one busy and one idle) in the test database."""
    for d in (date(2026, 3, 1), date(2026, 3, 2)):
        frame = pl.DataFrame([stored_row(d, "u1", "ns-a", 0.9), stored_row(d, "u2", "ns-b", 0.01)], schema=ROLLUP_SCHEMA)
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, d, frame)
