"""AppTest: the usage page shows the training sheet of a run and the monthly inference sheet of
small demo metrics, with the core functions' figures; an applicant and their department head see
only their department's runs and services, and the page says whose data it shows."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import polars as pl
import pytest

from core.identity import load_personas
from core.metrics import usage
from core.metrics.sources import metrics_source
from tests.app.conftest import no_exceptions, open_page


def _ops():
    return next(p for p in load_personas() if p.id == "li.na")


def test_the_training_sheet_shows_the_core_figures_of_the_chosen_run(demo_metrics):
    at = open_page("app_pages/usage.py", persona="li.na")
    no_exceptions(at)
    namespace = at.selectbox(key="usage_ns").value
    assert "-train-" in namespace or "-dev-" in namespace
    day = metrics_source().days()[-1]  # the page's default window ends on the last day with data
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=timezone.utc)
    sheet = usage.training_sheet(sessions=demo_metrics.sessions, actor=_ops(), source=metrics_source(),
                                 namespace=namespace, start=end - timedelta(days=1), end=end)
    shown = {m.label: m.value for m in at.metric}
    assert shown["GPUs"] == str(sheet.summary["gpus"])
    assert shown["Mean GPU utilisation"] == f"{sheet.summary['mean_util'] * 100:.1f} %"
    assert len(at.success) + len(at.warning) >= 2  # the demo banner plus the hints or "no bottleneck"
    assert any("every namespace of HQ and the provinces" in i.value for i in at.info)


def test_the_inference_sheet_shows_qps_and_latency_of_the_services_that_export_them(demo_metrics):
    from core.metrics.serving import serving_source

    at = open_page("app_pages/usage.py", persona="zhao.min", lang="zh-CN")
    no_exceptions(at)
    month = date.today() - timedelta(days=1)
    kinds = usage.namespace_kinds(sessions=demo_metrics.sessions, source=metrics_source())
    sheet = usage.inference_sheet(sessions=demo_metrics.sessions, actor=_ops(), month=month, kinds=kinds,
                                  serving=serving_source())
    table = at.dataframe[-1].value.set_index("服务（命名空间）")
    assert len(table) == sheet.rows.height > 0
    assert table["已分配卡时"].sum() == pytest.approx(sheet.rows["allocated_gpu_hours"].round(1).sum())
    exported = sheet.rows.filter(pl.col("qps_mean").is_not_null())
    silent = sheet.rows.filter(pl.col("qps_mean").is_null())
    assert exported.height and silent.height  # the demo has services of both kinds
    for r in exported.iter_rows(named=True):
        shown = table.loc[r["namespace"]]
        assert shown["平均 QPS"] == f"{r['qps_mean']:,.1f}" and shown["峰值 QPS"] == f"{r['qps_peak']:,.1f}"
        assert shown["P99 时延 ms"] == f"{r['latency_p99_ms']:,.1f}"
        assert shown["平均时延 ms"] == f"{r['latency_mean_ms']:,.1f}"
    for ns in silent["namespace"]:
        assert table.loc[ns, "平均 QPS"] == table.loc[ns, "P99 时延 ms"] == "未导出"
    assert any(f"{exported.height} 个导出了请求指标" in c.value for c in at.caption)


def test_a_malformed_request_file_is_named_and_the_gpu_figures_stay(demo_metrics, tmp_path):
    from core.metrics.sources import metrics_dir

    day = metrics_source().days()[-1]
    bad = metrics_dir() / "serving" / f"day={day.isoformat()}" / "zz-import.csv"
    bad.write_text("ts,cluster,namespace,interval_s,requests\n"
                   f"{day.isoformat()}T10:00:00Z,hq,svc-a,60,12\n{day.isoformat()}T10:01:00Z,hq,svc-a,60,-3\n")
    at = open_page("app_pages/usage.py", persona="li.na")
    no_exceptions(at)
    assert any(f"{bad}:3" in w.value and "requests" in w.value for w in at.warning)
    assert len(at.dataframe[-1].value) > 0
    assert set(at.dataframe[-1].value["Mean QPS"]) == {"not exported"}


def test_the_usage_page_without_metrics_says_there_is_nothing_yet():
    at = open_page("app_pages/usage.py", persona="li.na")
    no_exceptions(at)
    assert any("No training run" in i.value for i in at.info)


def _bind(ctx, actor, form: dict, namespace: str, kind: str) -> None:
    """A standard request granted through the services, then bound to a demo fleet namespace (as the
    demo history does: the demo samples exist only for the fleet's namespaces)."""
    from core.lifecycle import services as svc
    from core.lifecycle.persistence import AllocationRow, RequestRow
    from core.db.session import unit_of_work
    from sqlalchemy import select

    start = (date.today() + timedelta(days=1)).isoformat()
    view = svc.submit(sessions=ctx.sessions, actor=actor, form={**form, "start_date": start})
    with unit_of_work(ctx.sessions) as s:
        s.scalars(select(AllocationRow).where(AllocationRow.request_id == view["id"])).one().namespace = namespace
        s.get(RequestRow, view["id"]).demand_type = kind


@pytest.fixture
def two_departments(demo_metrics):
    """Digital's training run and service, marketing's training run and service (demo namespaces)."""
    from tests.integration.test_lifecycle_services import APPLICANT, OTHER_DEPT
    from tests.unit.test_lifecycle_rules import TRAINING

    admin = next(p for p in load_personas() if p.role == "admin")
    day = metrics_source().days()[-1]
    seen = usage.namespaces_seen(sessions=demo_metrics.sessions, actor=admin, first=day, last=day)["namespace"]
    train = sorted(ns for ns in seen if "-train-" in ns)[:2]
    svc_ns = sorted(ns for ns in seen if "-svc-" in ns)[:2]
    marketing = {**TRAINING, "department": "marketing", "project": "P-CS-04"}
    for actor, form, ns, kind in ((APPLICANT, TRAINING, train[0], "training"), (APPLICANT, TRAINING, svc_ns[0], "inference"),
                                  (OTHER_DEPT, marketing, train[1], "training"),
                                  (OTHER_DEPT, marketing, svc_ns[1], "inference")):
        _bind(demo_metrics, actor, form, ns, kind)
    return {"digital": (train[0], svc_ns[0]), "marketing": (train[1], svc_ns[1])}


@pytest.mark.parametrize(("persona", "lang", "department"), [("zhang.wei", "en", "Digital Department"),
                                                              ("zhou.lei", "zh-CN", "数字化部")])
def test_the_applicant_and_their_head_see_their_departments_run_and_service_only(two_departments, persona, lang,
                                                                                  department):
    at = open_page("app_pages/usage.py", persona=persona, lang=lang)
    no_exceptions(at)
    mine_train, mine_svc = two_departments["digital"]
    theirs = set(two_departments["marketing"])
    picker = at.selectbox(key="usage_ns")
    assert picker.value == mine_train and len(picker.options) == 1  # the only training run of 数字化部
    assert at.metric  # the sheet of that run is shown
    services = at.dataframe[-1].value.iloc[:, 0].tolist()
    assert services == [mine_svc]
    shown = " ".join([*picker.options, *services, *(c.value for c in at.caption), *(m.value for m in at.markdown)])
    assert not [ns for ns in theirs if ns in shown]
    assert any(department in i.value for i in at.info), [i.value for i in at.info]
