"""AppTest: the inference usage sheet says where its QPS and latency come from — the daily service
rollups, and the live source for the days without one — in both languages, with the core figures."""

from __future__ import annotations

import polars as pl
import pytest

from core.identity import load_personas
from core.metrics import usage
from core.metrics.serving import OfflineServingSource, serving_source
from core.metrics.serving_rollup import ensure_serving_rollups
from core.metrics.sources import metrics_dir, metrics_source
from tests.support import clock
from tests.support.app_run import no_exceptions, open_page, text


@pytest.fixture
def rolled_up(demo_metrics):
    """One day of demo samples, its GPU rollup and its service rollup (as `demo metrics` does)."""
    ctx = demo_metrics
    served = OfflineServingSource(metrics_dir() / "serving")
    assert ensure_serving_rollups(ctx.sessions, served, served.days())["days"] == 1
    return ctx


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_sheet_says_which_days_come_from_rollups_and_shows_their_figures(rolled_up, lang):
    at = open_page("app_pages/usage.py", persona="li.na", lang=lang)
    no_exceptions(at)
    ops = next(p for p in load_personas() if p.id == "li.na")
    month = clock.day(-1)
    sheet = usage.inference_sheet(sessions=rolled_up.sessions, actor=ops, month=month,
                                  kinds=usage.namespace_kinds(sessions=rolled_up.sessions, source=metrics_source()),
                                  serving=serving_source())
    assert sheet.serving_basis.rollup_days == 1 and sheet.serving_basis.rollup_sources == ("offline",)
    caption = " ".join(c.value for c in at.caption)
    said = text("serving.basis_rollups", lang, rollup=1, days=sheet.serving_basis.window_days,
                sources=text("serving.source.offline", lang))
    assert said in caption, caption
    table = at.dataframe[-1].value.set_index(at.dataframe[-1].value.columns[0])
    exported = sheet.rows.filter(pl.col("qps_mean").is_not_null())
    assert exported.height > 0
    for r in exported.iter_rows(named=True):
        assert f"{r['latency_p99_ms']:,.1f}" in table.loc[r["namespace"]].to_list()
