"""AppTest: the Estimate page shows the method's leave-one-out error next to the confidence, and the
recommendation offers the organisation's GPU models unless "whole catalog" is ticked, with durations
under a day in hours."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.estimation.catalog import load_catalog
from core.estimation.validation import method_label, percent, published_accuracy, times
from tests.support.app_run import no_exceptions, open_page, shows, text

PAGE = "app_pages/estimate.py"
ORG = yaml.safe_load((Path(__file__).resolve().parents[2] / "data" / "org.yaml").read_text(encoding="utf-8"))
POOL_GPUS = {load_catalog().get(p["gpu"]).id for p in ORG["pools"] if p["kind"] != "dynamic_reserve"}


def _button(at, key, lang="en"):
    label = text(key, lang)
    return next(b for b in at.button if b.label == label)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_accuracy_on_unseen_published_runs_is_shown_next_to_the_confidence(lang):
    at = open_page(PAGE, lang=lang)
    _button(at, "training.submit", lang).click().run()
    no_exceptions(at)
    acc = published_accuracy()
    assert shows(at.caption, "estvalid.accuracy", lang, runs=acc.overall.runs,
                 median=percent(acc.overall.median_error), worst=times(acc.overall.worst_factor))
    # the default job (Llama 2 7B on 8 A100) is a tier-1 dense estimate: its own line is shown too
    tier1 = acc.group("tier 1")
    assert shows(at.caption, "estvalid.accuracy_method", lang, runs=tier1.runs, method=method_label("tier 1", lang),
                 median=percent(tier1.median_error), worst=times(tier1.worst_factor))


def _pareto_table(at):
    gpu_col = text("training.gpu")
    tables = [d.value for d in at.dataframe if gpu_col in d.value.columns and text("estvalid.col_pools") in d.value.columns]
    assert tables, "no Pareto table"
    return tables[0]


def test_recommendation_offers_pool_gpus_by_default_and_the_catalog_when_asked():
    at = open_page(PAGE)
    at.number_input(key="tr_tokens_b").set_value(1.0)   # a 7B job of 1e9 tokens: hours, not days
    at.number_input(key="tr_deadline_days").set_value(2.0)
    _button(at, "recommend.run").click().run()
    no_exceptions(at)
    table = _pareto_table(at)
    assert set(table[text("training.gpu")]) <= POOL_GPUS
    assert all(table[text("estvalid.col_pools")].astype(bool))
    hours = text("unit.hours", value="").strip()
    assert any(str(v).endswith(hours) for v in table[text("estvalid.col_duration")])
    assert shows(at.markdown, "recommend.org_scope")

    at.checkbox(key="tr_whole_catalog").check()
    _button(at, "recommend.run").click().run()
    no_exceptions(at)
    table = _pareto_table(at)
    assert not set(table[text("training.gpu")]) <= POOL_GPUS  # e.g. B200, which no pool holds
    assert not shows(at.markdown, "recommend.org_scope")
