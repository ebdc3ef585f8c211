"""The board's figures read at a glance: whole GPUs, money in 万元 (zh-CN) or k/M/bn CNY (en), and
signed changes whose sign Streamlit's st.metric understands."""

from __future__ import annotations

import pytest

from core.reports import figures


@pytest.mark.parametrize(("value", "shown"), [(824.04, "824"), (183.96, "184"), (1008, "1,008"), (0.4, "0"),
                                              (None, "—")])
def test_gpus_are_whole(value, shown):
    assert figures.gpus(value) == shown


@pytest.mark.parametrize(("value", "shown"), [(9_201_142.50, "920.1 万元"), (123_456_789, "12,345.7 万元"),
                                              (5_000, "0.5 万元"), (0, "0.0 万元"), (None, "—")])
def test_money_in_chinese_is_in_wan_yuan_with_one_decimal(value, shown):
    assert figures.money(value, "zh-CN") == shown


@pytest.mark.parametrize(("value", "shown"), [(9_201_142.50, "CNY 9.2M"), (920_140, "CNY 920.1k"),
                                              (2_345_000_000, "CNY 2.3bn"), (950.4, "CNY 950"), (None, "—")])
def test_money_in_english_takes_a_unit_by_size(value, shown):
    assert figures.money(value, "en") == shown


def test_a_unit_price_keeps_its_fen():
    assert figures.price(26.134, "zh-CN") == "26.13 元"
    assert figures.price(26.134, "en") == "CNY 26.13"


def test_percentages_hours_days_and_gpu_hours_carry_their_unit():
    assert figures.pct(0.59339) == "59.3%"
    assert figures.hours(12.345, "zh-CN") == "12.3 小时" and figures.hours(12.345, "en") == "12.3 h"
    assert figures.days(30, "zh-CN") == "30 天"
    assert figures.gpu_hours(352_063.30, "zh-CN") == "352,063 卡时"
    assert figures.gpu_hours(352_063.30, "en") == "352,063 GPU-h"


@pytest.mark.parametrize(("delta", "shown"), [(11.6, "+12"), (-11.6, "-12"), (0.4, figures.ZERO), (-0.4, figures.ZERO),
                                              (1234.2, "+1,234")])
def test_a_change_in_gpus_is_whole_and_signed_with_an_ascii_sign(delta, shown):
    assert figures.signed_gpus(delta) == shown


def test_a_change_of_a_ratio_is_in_percentage_points_and_a_relative_change_in_percent():
    assert figures.signed_points(0.012, "zh-CN") == "+1.2 个百分点"
    assert figures.signed_points(-0.012, "en") == "-1.2 pp"
    assert figures.signed_points(0.0004, "en") == figures.ZERO
    assert figures.signed_pct(-0.032262) == "-3.2%"
    assert figures.signed_pct(0.15) == "+15.0%"
