"""AppTest: the usage page's per-GPU strip and table are computed and sent only when their expander
is opened (issue 10: a chart and a table of one row per GPU cost the browser a second or more on a
large run), and then show every GPU of the run."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from core.identity import load_personas
from core.metrics import usage
from core.metrics.sources import metrics_source
from tests.support.app_run import no_exceptions, open_page, text
from tests.support.expanders import set_expander


def _vega(at) -> list:
    return at.get("vega_lite_chart")


def test_the_per_gpu_strip_and_table_render_only_once_the_expander_is_open(demo_metrics):
    at = open_page("app_pages/usage.py", persona="li.na")
    no_exceptions(at)
    charts, tables = len(_vega(at)), len(at.dataframe)
    assert charts == 2  # the job curves: utilisation and memory, power

    set_expander(at, text("usage.per_gpu"))
    no_exceptions(at)
    assert len(_vega(at)) == charts + 1 and len(at.dataframe) == tables + 1

    namespace = at.selectbox(key="usage_ns").value
    day = metrics_source().days()[-1]
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=timezone.utc)
    ops = next(p for p in load_personas() if p.id == "li.na")
    sheet = usage.training_sheet(sessions=demo_metrics.sessions, actor=ops, source=metrics_source(),
                                 namespace=namespace, start=end - timedelta(days=1), end=end)
    per_gpu = next(d.value for d in at.dataframe if text("usage.col.uuid") in d.value.columns)
    assert sorted(per_gpu[text("usage.col.uuid")]) == sorted(sheet.gpus["uuid"].to_list())
