"""The board's headline tiles: grouped, whole and rounded figures, the change against last month with
the right colour sense, the target where data/board_targets.yaml sets one; lists that show what
they rank; the water level's colours the same in both languages."""

from __future__ import annotations

import copy

import polars as pl
import pytest
import yaml

from core.datafiles import data_path
from core.errors import InputError
from core.i18n import translate
from core.org import load_org
from core.reports import charts
from core.reports.build import build_report, month_summary
from core.reports.ranked import ranked_list
from core.reports.tiles import Target, comparison_note, headline_tiles, load_targets, parse_targets
from tests.support.report_data import ALLOCS, PRICES, REQUESTS, ROWS, SETTINGS


def _report() -> dict:
    """A March report (31 days) against February (28 days), both fully observed."""
    return {
        "month": "2026-03",
        "water_level": {"total": 100, "allocated": 60.4, "available": 39.6, "portal_granted": 50,
                        "hours_in_month": 744.0, "by_model": [{"model": "H800-SXM", "allocated": 60.4, "available": 39.6}]},
        "health": {"util_allocated": 0.55, "util_fleet": 0.4, "queue_wait": {"mean_h": 3.25}, "incidents": {"count": 2}},
        "economics": {"cost": 9_201_142.5, "cost_per_useful_gpu_hour": 26.134, "gpu_hours_used": 352_063.3},
        "trends": {
            "current": {"util_allocated": 0.55, "cost": 9_201_142.5, "gpu_hours_used": 352_063.3, "coverage": 1.0},
            "previous_month": {"gpu_hours_allocated": 50 * 24 * 28, "util_allocated": 0.5, "cost": 8_000_000.0,
                               "gpu_hours_used": 300_000.0, "coverage": 1.0},
            "vs_previous_month": {"cost": 0.150143, "gpu_hours_used": 0.173544},
            "comparison": {"previous_month": {"status": "ok", "coverage": 1.0, "base_coverage": 1.0, "min_coverage": 0.6}},
        },
        "entities": [
            {"id": "p-a", "name_zh": "甲项目", "name_en": "Project A", "util": 0.9, "mem": 0.7,
             "cost_per_useful_gpu_hour": 2.2, "idle_days": 0, "gap_gpu_hours": 10.0},
            {"id": "p-b", "name_zh": "乙项目", "name_en": "Project B", "util": 0.01, "mem": 0.1,
             "cost_per_useful_gpu_hour": 3000.0, "idle_days": 30, "gap_gpu_hours": 5108.4},
        ],
        "red_list": {"highest_util": ["p-a", "p-b"], "best_cost_per_useful_hour": ["p-a", "p-b"]},
        "black_list": {"lowest_util": ["p-b", "p-a"], "long_idle": ["p-b"], "largest_gap": ["p-b", "p-a"]},
    }


def _tiles(report, lang="zh-CN", targets=None):
    return {t.key: t for g in headline_tiles(report, lang, targets) for t in g.tiles}


def test_nine_tiles_in_three_groups_with_whole_gpus_and_rounded_money():
    groups = headline_tiles(_report(), "zh-CN")
    assert [g.title for g in groups] == ["资源水位", "运营健康度", "经济指标"]
    assert [len(g.tiles) for g in groups] == [3, 3, 3]
    tiles = _tiles(_report())
    assert (tiles["gpus_allocated"].value, tiles["gpus_available"].value) == ("60", "40")
    assert tiles["cost"].value == "920.1 万元"
    assert tiles["cost_per_useful_gpu_hour"].value == "26.13 元"
    assert tiles["gpu_hours_used"].value == "352,063 卡时"
    assert _tiles(_report(), "en")["cost"].value == "CNY 9.2M"


def test_changes_against_last_month_with_their_colour_sense():
    tiles = _tiles(_report())
    # 60.4 allocated this month against 50 × 24 × 28 GPU-hours ÷ (24 × 28 h) = 50 last month
    assert (tiles["gpus_allocated"].delta, tiles["gpus_allocated"].delta_color) == ("+10", "normal")
    # ten more GPUs at work are ten fewer idle: a fall, and a fall of idle GPUs is good
    assert (tiles["gpus_available"].delta, tiles["gpus_available"].delta_color) == ("-10", "inverse")
    assert (tiles["util_allocated"].delta, tiles["util_allocated"].delta_color) == ("+5.0 个百分点", "normal")
    assert (tiles["cost"].delta, tiles["cost"].delta_color) == ("+15.0%", "off")
    # 9,201,142.5 / 352,063.3 = 26.135 against 8,000,000 / 300,000 = 26.667: 2.0 % cheaper per used hour
    assert (tiles["cost_per_useful_gpu_hour"].delta, tiles["cost_per_useful_gpu_hour"].delta_color) == ("-2.0%", "inverse")
    assert (tiles["gpu_hours_used"].delta, tiles["gpu_hours_used"].delta_color) == ("+17.4%", "normal")


def test_more_idle_gpus_than_last_month_is_a_rise_coloured_as_bad():
    report = _report()
    report["trends"]["previous_month"]["gpu_hours_allocated"] = 70 * 24 * 28
    tiles = _tiles(report)
    assert (tiles["gpus_available"].delta, tiles["gpus_available"].delta_color) == ("+10", "inverse")
    assert tiles["gpus_allocated"].delta == "-10"


def _schema4(report: dict) -> dict:
    """The water level of core.capacity_figures: the portal's grants, reserved, and last month's figures."""
    report["water_level"].update(reserved=5.0, previous_month={"month": "2026-02", "total": 100, "allocated": 70.0,
                                                                "reserved": 5.0, "available": 25.0})
    report["water_level"]["by_model"][0].update(reserved=5.0)
    return report


def test_grants_are_compared_with_last_months_grants_whatever_the_metrics_coverage():
    report = _schema4(_report())
    report["trends"]["comparison"]["previous_month"].update(status="insufficient_data", base_coverage=0.1)
    tiles = _tiles(report, "en")
    assert (tiles["gpus_allocated"].delta, tiles["gpus_allocated"].delta_color) == ("-10", "normal")
    assert (tiles["gpus_available"].delta, tiles["gpus_available"].delta_color) == ("+15", "inverse")
    assert tiles["util_allocated"].delta is None  # from the metrics: not comparable
    assert tiles["gpus_allocated"].help == translate("capacity.board_help.gpus_allocated_mean", "en")
    assert tiles["gpus_total"].help == translate("capacity.board_help.gpus_total", "en")


def test_gpu_changes_are_coverage_normalised_like_the_reports_trends():
    report = _report()
    report["trends"]["comparison"]["previous_month"]["coverage"] = 0.9
    # 60.4 ÷ 0.9 = 67.1 GPUs in a fully observed month, against 50
    assert _tiles(report)["gpus_allocated"].delta == "+17"


def test_an_unchanged_figure_is_grey_without_a_sign():
    report = _report()
    report["trends"]["previous_month"]["util_allocated"] = 0.5498
    tile = _tiles(report)["util_allocated"]
    assert (tile.delta, tile.delta_color) == ("±0", "off")


@pytest.mark.parametrize("status", ["insufficient_data", "no_data"])
def test_no_change_without_a_comparable_last_month_and_the_board_says_why(status):
    report = _report()
    report["trends"]["comparison"]["previous_month"].update(status=status, coverage=0.9, base_coverage=0.3)
    assert all(t.delta is None for t in _tiles(report).values())
    note = comparison_note(report, "zh-CN")
    assert note and "2026-02" in note
    assert comparison_note(_report(), "zh-CN") is None


def test_a_report_built_before_the_comparison_shows_grants_without_changes():
    report = _report()
    del report["trends"]["comparison"]
    del report["water_level"]["portal_granted"]
    tiles = _tiles(report, "en")
    assert all(t.delta is None for t in tiles.values())
    assert tiles["gpus_allocated"].label == translate("board.tile.gpus_allocated", "en")
    assert "2026-02" in comparison_note(report, "en")


def test_queue_wait_and_incidents_say_the_report_has_no_figure_of_last_month():
    tiles = _tiles(_report(), "en")
    for key in ("queue_wait_mean_h", "incidents"):
        assert tiles[key].delta is None and tiles[key].help == translate("board.delta.not_in_report", "en")
    assert tiles["gpus_total"].help is None
    assert "40.0%" in tiles["util_allocated"].help  # the fleet's utilisation, no longer a tile of its own


def test_a_target_is_shown_met_in_green_or_missed_in_red_with_the_gap():
    targets = {"util_allocated": Target(0.6, "at_least", "agreed"), "cost_per_useful_gpu_hour": Target(30, "at_most", "x")}
    tiles = _tiles(_report(), "zh-CN", targets)
    util = tiles["util_allocated"].target
    assert not util.met and util.text == "目标 ≥ 60.0%：差 5.0 个百分点"
    cost = tiles["cost_per_useful_gpu_hour"].target
    assert cost.met and cost.text == "目标 ≤ 30.00 元：已达成"
    assert tiles["queue_wait_mean_h"].target is None


def test_the_shipped_targets_are_unset_each_with_its_source():
    raw = yaml.safe_load(data_path("board_targets.yaml").read_text(encoding="utf-8"))
    assert raw and all(entry["value"] is None and entry["source"].strip() for entry in raw.values())
    assert load_targets() == {}


def test_a_set_target_is_read_with_its_direction():
    targets = parse_targets({"util_allocated": {"value": 0.6, "direction": "at_least", "source": "plan 2027"}})
    assert targets == {"util_allocated": Target(0.6, "at_least", "plan 2027")}


@pytest.mark.parametrize("entry", [
    {"cost": {"value": 1, "direction": "at_most", "source": "x"}},               # not a tile with a target
    {"util_allocated": {"value": 60, "direction": "at_least", "source": "x"}},   # a ratio, not a percent
    {"util_allocated": {"value": 0.6, "direction": "above", "source": "x"}},
    {"util_allocated": {"value": 0.6, "direction": "at_least"}},                 # no source
    {"incidents": {"value": "none", "direction": "at_most", "source": "x"}},
    ["util_allocated"],                                                          # not a mapping at all
])
def test_a_bad_target_names_the_file_and_the_entry(entry):
    with pytest.raises(InputError) as err:
        parse_targets(entry)
    assert err.value.field == "board_targets.yaml"


def test_tiles_of_a_report_built_from_rollups_carry_changes():
    org = load_org()
    hq_gpus = sum(p.gpus for p in org.pools.values() if org.clusters[p.cluster].unit == "HQ")
    feb = month_summary(ROWS.filter(pl.col("cluster").str.starts_with("hq")), month="2026-02", prices=PRICES,
                        gpus_total=hq_gpus)
    settings = {**SETTINGS, "min_coverage_for_trends": 0.0}
    report = build_report(month="2026-03", scope="HQ", rollups=ROWS, allocations=ALLOCS, requests=REQUESTS, org=org,
                          prices=PRICES, settings=settings, history={"2026-02": feb})
    tiles = _tiles(report, "en")
    assert tiles["gpus_allocated"].delta and tiles["util_allocated"].delta.endswith("pp")
    assert tiles["gpus_total"].value == f"{hq_gpus:,}"


def test_each_list_shows_the_figure_it_ranks_by():
    cost = ranked_list(_report(), "red_list", "best_cost_per_useful_hour", "zh-CN")
    assert cost.title == "单位有效卡时成本最低"
    assert cost.lines == ("1. 甲项目：2.20 元", "2. 乙项目：3,000.00 元")
    assert "单位有效卡时成本" in cost.basis and "由低到高" in cost.basis
    assert not any("%" in line for line in cost.lines)
    assert ranked_list(_report(), "black_list", "long_idle", "en").lines == ("1. Project B — 30 d",)
    assert ranked_list(_report(), "black_list", "largest_gap", "en").lines[0] == "1. Project B — 5,108 GPU-h"
    assert ranked_list(_report(), "red_list", "highest_util", "en").lines[0] == "1. Project A — 90.0%"


def _colours(spec: dict) -> dict:
    scale = spec["encoding"]["color"]["scale"]
    return dict(zip(scale["domain"], scale["range"]))


def test_the_water_level_keeps_each_meanings_colour_in_both_languages():
    report = copy.deepcopy(_report())
    zh, en = (charts.water_chart(report, lang).to_dict() for lang in ("zh-CN", "en"))
    assert _colours(zh) == _colours(en) and set(_colours(zh)) == {"allocated", "available"}
    assert _colours(zh)["allocated"] != _colours(zh)["available"]
    # the legend shows the words of the page's language for the same keys
    assert "已分配" in zh["encoding"]["color"]["legend"]["labelExpr"]
    assert "Allocated" in en["encoding"]["color"]["legend"]["labelExpr"]


def test_reserved_gpus_get_their_own_colour_between_allocated_and_available():
    zh, en = (charts.water_chart(_schema4(_report()), lang).to_dict() for lang in ("zh-CN", "en"))
    assert _colours(zh) == _colours(en)
    assert list(_colours(zh)) == ["allocated", "reserved", "available"] and len(set(_colours(zh).values())) == 3
