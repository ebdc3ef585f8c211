"""The monthly report's numbers against a hand-computed fixture (HQ scope, March 2026)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from core.errors import InputError
from core.metrics.schema import ROLLUP_SCHEMA
from core.org import load_org
from core.reports.build import build_report, month_summary, parse_month, shift_month
from tests.support.report_data import (
    ALLOCS, FAILURES, JOBS, PRICES, REQUESTS, RESULTS, ROWS, SETTINGS, job_rows as _job_rows,
    rollup_row as _row,
)


@pytest.fixture(scope="module")
def report():
    org = load_org()
    hq_gpus = sum(p.gpus for p in org.pools.values() if org.clusters[p.cluster].unit == "HQ")
    feb = month_summary(ROWS.filter(pl.col("cluster").str.starts_with("hq")), month="2026-02", prices=PRICES,
                        gpus_total=hq_gpus)
    return build_report(month="2026-03", scope="HQ", rollups=ROWS, allocations=ALLOCS, requests=REQUESTS, org=org,
                        prices=PRICES, settings=SETTINGS, history={"2026-02": feb, "2025-03": None},
                        people={"zhang.wei": "张伟"}, provision_failures=FAILURES)


def _entity(report, key):
    return next(e for e in report["entities"] if e["id"] == key)


def test_gpu_hour_weighted_utilisation_memory_and_fleet_utilisation(report):
    h = report["health"]
    assert h["util_allocated"] == pytest.approx(34.56 / 84, abs=1e-6)
    assert h["util_fleet"] == pytest.approx(34.56 / 108, abs=1e-6)
    assert h["mem_allocated"] == pytest.approx(32.4 / 84, abs=1e-6)


def test_queue_wait_and_provisioning_time_come_from_request_timestamps_in_scope(report):
    h = report["health"]
    assert h["queue_wait"] == {"count": 2, "mean_h": 39.0, "median_h": 39.0, "p90_h": 72.0, "max_h": 72.0}
    assert h["provisioning_time"]["count"] == 1 and h["provisioning_time"]["mean_h"] == 1.0


def test_incidents_are_every_failed_provisioning_run_of_the_month_in_scope(report):
    i = report["health"]["incidents"]
    assert i["count"] == 3 and i["requests"] == 1          # request 2: two failed steps and a run that died
    assert [(x["request_id"], x["cause"], x["attempt"]) for x in i["items"]] == [
        (2, "failed", 1), (2, "failed", 2), (2, "interrupted", None)]
    assert i["items"][0] == {"request_id": 2, "number": "R2", "pool": "hq-ft", "at": "2026-03-02T01:00:00+00:00",
                             "step": "Namespace/ns-exp", "attempt": 1, "cause": "failed"}
    assert i["definition_key"] == "reportfix.incident_definition"


def test_without_the_failure_events_incidents_say_not_available_rather_than_zero():
    r = build_report(month="2026-03", scope="HQ", rollups=ROWS, allocations=ALLOCS, requests=REQUESTS, org=load_org(),
                     prices=PRICES, settings=SETTINGS)
    assert r["health"]["incidents"] == {"available": False, "count": None, "requests": None, "items": []}


def test_namespaces_map_to_projects_through_allocations_else_stay_namespaces(report):
    llm, orphan = _entity(report, "P-LLM-01"), _entity(report, "ns-orphan")
    assert llm["kind"] == "project" and llm["owner"] == "张伟" and llm["department"] == "digital"
    assert orphan["kind"] == "namespace" and orphan["owner"] is None
    assert {e["id"] for e in report["entities"]} == {"P-LLM-01", "ns-orphan"}  # JS and idle rows left out
    assert llm["gpu_hours_allocated"] == 48 and llm["gpu_hours_used"] == pytest.approx(33.6)
    assert llm["util"] == pytest.approx(0.7) and llm["mem"] == pytest.approx(0.6)
    assert llm["cost"] == 1440 and llm["cost_per_useful_gpu_hour"] == pytest.approx(1440 / 33.6, abs=1e-4)
    assert llm["requested_gpu_hours"] == 96 and llm["gap_gpu_hours"] == pytest.approx(62.4)
    assert orphan["util"] == pytest.approx(0.96 / 36, abs=1e-6) and orphan["idle_days"] == 2
    assert orphan["requested_source"] == "metrics" and orphan["gap_gpu_hours"] == pytest.approx(35.04)


def test_red_and_black_lists_rank_projects_by_the_documented_measures(report):
    assert report["red_list"] == {"highest_util": ["P-LLM-01", "ns-orphan"],
                                  "best_cost_per_useful_hour": ["P-LLM-01", "ns-orphan"]}
    assert report["black_list"] == {"lowest_util": ["ns-orphan", "P-LLM-01"], "long_idle": ["ns-orphan"],
                                    "largest_gap": ["P-LLM-01", "ns-orphan"]}
    assert report["top"]["memory"] == ["P-LLM-01", "ns-orphan"]
    assert report["top"]["cpu"]["available"] is False


def test_projects_below_the_ranking_minimum_stay_out_of_the_lists():
    small = build_report(month="2026-03", scope="HQ", rollups=ROWS, allocations=ALLOCS, requests=[], org=load_org(),
                         prices=PRICES, settings={**SETTINGS, "min_gpu_hours_for_ranking": 40})
    assert small["red_list"]["highest_util"] == ["P-LLM-01"]
    assert small["black_list"]["long_idle"] == []


def test_economics_cost_energy_and_placeholder_prices(report):
    e = report["economics"]
    assert e["gpu_hours_allocated"] == 84 and e["gpu_hours_used"] == pytest.approx(34.56)
    assert e["energy_kwh"] == 26 and e["cost"] == 1980
    assert e["cost_per_useful_gpu_hour"] == pytest.approx(1980 / 34.56, abs=1e-4)
    assert e["placeholder_prices"] is True
    assert {m["model"]: m["cost"] for m in e["by_model"]} == {"A800-80GB": 540, "H20": 0, "H800-SXM": 1440}


def test_water_level_allocated_is_the_portals_allocations_of_each_day_not_the_metrics(report):
    w = report["water_level"]
    # ns-llm's 1 GPU counts every day of March (held past its end date, never released); HQ has 736 GPUs
    assert w["total"] == 736 and w["allocated"] == 1 and w["portal_granted"] == 1
    assert w["reserved"] == 64 + 32 and w["available"] == 736 - 1 - 96  # hq-reserve and hq-dynamic
    # in use: u1's two busy days (0.8, 0.6 ≥ 0.10) of an owned namespace; u2 (0.02, 0.03) is not busy
    assert w["in_use"] == pytest.approx(48 / 744, abs=1e-4) and w["in_use_unallocated"] == 0
    assert w["hours_in_month"] == 744 and w["definition_key"] == "capacity.board_water_definition"
    released = [{**ALLOCS[0], "released_on": date(2026, 3, 20)}]
    again = build_report(month="2026-03", scope="HQ", rollups=ROWS, allocations=released, requests=[], org=load_org(),
                         prices=PRICES, settings=SETTINGS)["water_level"]
    assert again["portal_granted"] == 0 and again["allocated"] == pytest.approx(19 / 31, abs=1e-4)
    elsewhere = [{**ALLOCS[0], "namespace": "ns-other"}]
    unowned = build_report(month="2026-03", scope="HQ", rollups=ROWS, allocations=elsewhere, requests=[],
                           org=load_org(), prices=PRICES, settings=SETTINGS)["water_level"]
    assert unowned["in_use_unallocated"] == pytest.approx(48 / 744, abs=1e-4)  # ns-llm: nobody's allocation


def _w(day, host, cluster, model, ns, gpus=1, samples=1440):
    return [{**_row(day, f"{host}-{g}", cluster, model, ns, 0.5, 0.5, samples=samples), "hostname": host}
            for g in range(gpus)]


def test_water_level_by_pool_and_model_on_a_hand_computed_month():
    april = [date(2026, 4, d) for d in range(1, 31)]
    rows = []
    for d in april[:10]:
        rows += _w(d, "lang-node-1", "hq-beijing-1", "H800-SXM", "ns-a", gpus=2)       # 10 d × 2 × 24 = 480 h
        rows += _w(d, "lang-node-1", "hq-beijing-1", "H800-SXM", "")                   # busy, in no namespace: 240 h
    for d in april:
        rows += _w(d, "reserve-node-1", "hq-beijing-1", "H800-SXM", "ns-b")            # 30 × 24 = 720 h
        rows += _w(d, "mystery-1", "hq-beijing-2", "A800-80GB", "ns-d")                # 720 h, pool unknown
    for d in april[:15]:
        rows += _w(d, "ft-x", "hq-beijing-2", "H20", "ns-c", samples=720)              # 15 × 12 = 180 h, only H20 pool
    # 8 GPUs of hq-lang owning ns-a from April 2 (29 of 30 days)
    grant = {**ALLOCS[0], "gpus": 8, "namespace": "ns-a", "starts_on": date(2026, 4, 2), "ends_on": date(2026, 5, 2)}
    r = build_report(month="2026-04", scope="HQ", rollups=pl.DataFrame(rows, schema=ROLLUP_SCHEMA), allocations=[grant],
                     requests=[], org=load_org(), prices=PRICES, settings=SETTINGS,
                     node_pools={"lang-node-1": "hq-lang", "reserve-node-1": "hq-reserve", "other": "no-such-pool"})
    w = r["water_level"]
    assert w["hours_in_month"] == 720
    pools = {p["pool"]: p for p in w["by_pool"]}
    lang = pools["hq-lang"]
    assert lang["allocated"] == pytest.approx(8 * 29 / 30, abs=1e-4) and lang["portal_granted"] == 8
    assert lang["reserved"] == 0 and lang["available"] == pytest.approx(256 - 8 * 29 / 30, abs=1e-4)
    # in use 720 h; without an allocation: the GPU in no namespace (240 h) and ns-a on April 1 (48 h)
    assert lang["in_use"] == 1 and lang["in_use_unallocated"] == pytest.approx(288 / 720, abs=1e-4)
    reserve = pools["hq-reserve"]
    assert (reserve["allocated"], reserve["reserved"], reserve["available"]) == (0, 64, 0)
    assert reserve["in_use"] == 1 and reserve["in_use_unallocated"] == 1
    assert pools["hq-ft"]["in_use"] == 0.25 and pools["hq-sci"]["in_use"] == 0   # A800 on 2 pools: unknown
    assert w["unattributed_in_use"] == 1
    models = {m["model"]: m for m in w["by_model"]}
    h800, a800 = models["H800-SXM"], models["A800-80GB"]
    assert h800["total"] == 320 and h800["reserved"] == 64 and h800["in_use"] == 2
    assert h800["in_use_unallocated"] == pytest.approx(1008 / 720, abs=1e-4) and h800["portal_granted"] == 8
    assert (a800["total"], a800["reserved"], a800["available"], a800["in_use"]) == (224, 32, 192, 1)
    assert w["allocated"] == pytest.approx(8 * 29 / 30, abs=1e-4) and w["reserved"] == 96
    assert w["available"] == pytest.approx(736 - 8 * 29 / 30 - 96, abs=1e-4)
    assert w["in_use"] == 3.25 and w["in_use_unallocated"] == pytest.approx(2.65, abs=1e-4)
    assert w["portal_granted"] == 8
    # March, to compare with: the grant had not started
    assert w["previous_month"] == {"month": "2026-03", "total": 736, "allocated": 0, "reserved": 96, "available": 640}


def test_the_current_month_is_averaged_over_its_days_so_far():
    from tests.support import clock

    first = clock.month_start(0)
    month = first.strftime("%Y-%m")
    days = (clock.today() - first).days + 1
    grant = {**ALLOCS[0], "gpus": 4, "starts_on": clock.today(), "ends_on": clock.day(30), "status": "active"}
    w = build_report(month=month, scope="HQ", rollups=ROWS.clear(), allocations=[grant], requests=[], org=load_org(),
                     prices=PRICES, settings=SETTINGS)["water_level"]
    assert w["days_counted"] == days and w["allocated"] == pytest.approx(4 / days, abs=1e-4)


def test_coverage_counts_observed_gpu_days_against_the_scope_inventory(report):
    c = report["coverage"]
    assert c["gpu_days_observed"] == 4.5 and c["gpu_days_expected"] == 736 * 31 and c["days_with_data"] == 2


def test_trends_list_the_months_and_do_not_compare_with_a_thinly_observed_month(report):
    t = report["trends"]
    assert t["previous_month"]["gpu_hours_used"] == 12
    # February holds one GPU-day of 736 × 28: no percentage, "insufficient data"
    assert t["comparison"]["previous_month"]["status"] == "insufficient_data"
    assert all(v is None for v in t["vs_previous_month"].values())
    assert t["same_month_last_year"] is None and all(v is None for v in t["vs_last_year"].values())
    assert t["comparison"]["last_year"]["status"] == "no_data"
    assert [m["month"] for m in t["months"]] == ["2026-01", "2026-02"]
    assert t["months"][0]["summary"] is None


def _sd_month(month, days, samples):
    """Every GPU of the SD pool (48 A30) with a workload every day, ``samples`` of 1440 per day."""
    first, _ = parse_month(month)
    return [_row(date(first.year, first.month, d), f"g{g}", "sd-jinan", "A30", "ns-sd", 0.5, 0.5, samples=samples,
                 energy=samples / 1440) for d in range(1, days + 1) for g in range(48)]


def test_trend_changes_compare_coverage_normalised_totals_and_need_the_minimum_coverage():
    prices = {"A30": (2.0, True)}
    march = pl.DataFrame(_sd_month("2026-03", 31, 1440), schema=ROLLUP_SCHEMA)            # coverage 1.0
    feb = month_summary(pl.DataFrame(_sd_month("2026-02", 28, 1152), schema=ROLLUP_SCHEMA), month="2026-02",
                        prices=prices, gpus_total=48)                                      # coverage 0.8
    last_year = month_summary(pl.DataFrame(_sd_month("2025-03", 31, 144), schema=ROLLUP_SCHEMA), month="2025-03",
                              prices=prices, gpus_total=48)                                # coverage 0.1
    assert feb["coverage"] == 0.8 and last_year["coverage"] == 0.1
    r = build_report(month="2026-03", scope="SD", rollups=march, allocations=[], requests=[], org=load_org(),
                     prices=prices, settings=SETTINGS, history={"2026-02": feb, "2025-03": last_year})
    t = r["trends"]
    # March: 48 × 24 × 31 = 35,712 GPU-hours at coverage 1; February observed 48 × 19.2 × 28 = 25,804.8 at
    # coverage 0.8, i.e. 32,256 for the whole month. Change 35,712 / 32,256 − 1 = 31/28 − 1 (raw would be +38 %).
    assert t["comparison"]["previous_month"]["status"] == "ok"
    assert t["vs_previous_month"]["gpu_hours_allocated"] == pytest.approx(31 / 28 - 1, abs=1e-6)
    assert t["vs_previous_month"]["gpu_hours_used"] == pytest.approx(31 / 28 - 1, abs=1e-6)
    assert t["vs_previous_month"]["cost"] == pytest.approx(31 / 28 - 1, abs=1e-6)
    assert t["vs_previous_month"]["energy_kwh"] == pytest.approx(31 / 28 - 1, abs=1e-6)
    assert t["vs_previous_month"]["util_allocated"] == 0                                  # a ratio: as it is
    # Last year's March was observed at 10 %: raw totals would say +900 %; below 60 % there is no change
    assert t["comparison"]["last_year"] == {"status": "insufficient_data", "coverage": 1.0, "base_coverage": 0.1,
                                            "min_coverage": 0.6}
    assert all(v is None for v in t["vs_last_year"].values())
    at_ten_percent = build_report(month="2026-03", scope="SD", rollups=march, allocations=[], requests=[],
                                  org=load_org(), prices=prices, settings={**SETTINGS, "min_coverage_for_trends": 0.1},
                                  history={"2025-03": last_year})["trends"]
    assert at_ten_percent["comparison"]["last_year"]["status"] == "ok"
    assert at_ten_percent["vs_last_year"]["gpu_hours_used"] == pytest.approx(0.0, abs=1e-6)  # same month, fully seen


@pytest.mark.parametrize("bad", [None, "0.6", 1.5, -0.1, True])
def test_a_bad_minimum_coverage_names_the_file(bad):
    with pytest.raises(InputError) as err:
        build_report(month="2026-03", scope="HQ", rollups=ROWS, allocations=[], requests=[], org=load_org(),
                     prices=PRICES, settings={**SETTINGS, "min_coverage_for_trends": bad})
    assert err.value.field == "warning_thresholds.yaml"


def test_missing_warnings_say_not_available():
    r = build_report(month="2026-03", scope="company", rollups=ROWS, allocations=[], requests=[], org=load_org(),
                     prices=PRICES, settings=SETTINGS)
    assert r["warnings"] == {"available": False, "items": []}
    assert {e["id"] for e in r["entities"]} == {"ns-llm", "ns-orphan", "ns-js"}


def test_drill_down_on_a_gpu_model_keeps_only_its_rows():
    r = build_report(month="2026-03", scope="HQ", rollups=ROWS, allocations=ALLOCS, requests=[], org=load_org(),
                     prices=PRICES, settings=SETTINGS, focus={"model": "A800-80GB"})
    assert [e["id"] for e in r["entities"]] == ["ns-orphan"]
    assert r["water_level"]["total"] == 128 + 64 + 32


@pytest.mark.parametrize("bad", ["2026-13", "2026-3", "march", ""])
def test_a_bad_month_names_the_field(bad):
    with pytest.raises(InputError) as err:
        parse_month(bad)
    assert err.value.field == "month"


def test_a_bad_scope_names_the_field():
    with pytest.raises(InputError) as err:
        build_report(month="2026-03", scope="XX", rollups=ROWS, allocations=[], requests=[], org=load_org(),
                     prices=PRICES, settings=SETTINGS)
    assert err.value.field == "scope"


def test_shift_month_crosses_years():
    assert shift_month("2026-01", -1) == "2025-12" and shift_month("2026-03", -12) == "2025-03"


# --------------------------------------------------------------------------- time–quality–energy of typical training jobs


def _jobs_report(limit):
    history, month = _job_rows()
    return build_report(month="2026-03", scope="HQ", rollups=month, allocations=JOBS, requests=[], org=load_org(),
                        prices=PRICES, settings={**SETTINGS, "typical_training_jobs": limit}, people={"zhang.wei": "张伟"},
                        training_results=RESULTS, job_history=history)["economics"]["training_jobs"]


def test_typical_training_jobs_are_the_training_allocations_of_the_month_with_most_gpu_hours():
    t = _jobs_report(2)
    assert t["candidates"] == 3 and [j["request_id"] for j in t["jobs"]] == [11, 12]
    assert [j["request_id"] for j in _jobs_report(5)["jobs"]] == [11, 12, 16]


def test_typical_job_time_gpu_hours_energy_and_cost_since_its_start_by_hand():
    a, b, f = _jobs_report(5)["jobs"]
    # A: 02-27 .. 03-04 (ends_on 03-05 exclusive) = 6 days; 2 GPUs × 24 h × 6 days; 12 rows × 5 kWh; H800 at 30
    assert a["wall_time_h"] == 144 and a["gpu_hours"] == 288 and a["energy_kwh"] == 60 and a["cost"] == 8640
    assert a["month_gpu_hours"] == 192 and a["month_energy_kwh"] == 40 and a["days_with_data"] == 6
    assert a["gpu_hours_used"] == pytest.approx(288 * 0.9) and a["owner"] == "张伟" and a["until"] == "2026-03-04"
    # B: released on 03-12, so 03-10 and 03-11 only; H20 at 10
    assert b["wall_time_h"] == 48 and b["gpu_hours"] == 48 and b["energy_kwh"] == 6 and b["cost"] == 480
    # F: no rollups of its namespace: no numbers made up
    assert f["gpu_hours"] is None and f["energy_kwh"] is None and f["cost"] is None and f["month_gpu_hours"] == 0


def test_typical_job_quality_is_the_latest_recorded_result_or_not_recorded():
    a, b, f = _jobs_report(5)["jobs"]
    assert a["quality"]["metric"] == "eval_loss" and a["quality"]["baseline"] == 2.3 and a["results_recorded"] == 2
    assert a["kwh_per_improvement"] == pytest.approx(60 / 0.5)           # 60 kWh for 0.5 less eval loss
    assert b["quality"] is None and b["results_recorded"] == 0 and b["kwh_per_improvement"] is None
    assert f["quality"]["improvement"] == -0.05 and f["kwh_per_improvement"] is None   # worse than baseline


def test_without_history_the_typical_job_figures_cover_the_month_only():
    _, month = _job_rows()
    r = build_report(month="2026-03", scope="HQ", rollups=month, allocations=JOBS, requests=[], org=load_org(),
                     prices=PRICES, settings=SETTINGS)
    a = r["economics"]["training_jobs"]["jobs"][0]
    assert a["gpu_hours"] == 192 and a["energy_kwh"] == 40 and a["quality"] is None
