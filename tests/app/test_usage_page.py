"""AppTest: the usage page shows the training sheet of a run and the monthly inference sheet of
small demo metrics, with the core functions' figures; an applicant and their department head see
only their department's runs and services, and the page says whose data it shows."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import polars as pl
import pytest

from core.identity import load_personas
from core.metrics import usage
from core.metrics.sources import metrics_source
from tests.support import clock
from tests.support.app_run import no_exceptions, open_page, shows, text


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
    assert shown[text("usage.gpus")] == str(sheet.summary["gpus"])
    assert shown[text("usage.mean_util")] == f"{sheet.summary['mean_util'] * 100:.1f} %"
    assert len(at.success) + len(at.warning) >= 2  # the demo banner plus the hints or "no bottleneck"
    assert shows(at.info, "usagescope.whose.all")


def test_the_inference_sheet_shows_qps_and_latency_of_the_services_that_export_them(demo_metrics):
    from core.metrics.serving import serving_source

    zh = "zh-CN"
    at = open_page("app_pages/usage.py", persona="zhao.min", lang=zh)
    no_exceptions(at)
    month = clock.day(-1)
    kinds = usage.namespace_kinds(sessions=demo_metrics.sessions, source=metrics_source())
    sheet = usage.inference_sheet(sessions=demo_metrics.sessions, actor=_ops(), month=month, kinds=kinds,
                                  serving=serving_source())
    col = {name: text(key, zh) for name, key in (
        ("service", "usage.col.service"), ("allocated", "usage.col.allocated_hours"), ("qps_mean", "usage.col.qps_mean"),
        ("qps_peak", "usage.col.qps_peak"), ("p99", "usage.col.latency_p99"), ("mean_ms", "serving.col.latency_mean"))}
    table = at.dataframe[-1].value.set_index(col["service"])
    assert len(table) == sheet.rows.height > 0
    assert table[col["allocated"]].sum() == pytest.approx(sheet.rows["allocated_gpu_hours"].round(1).sum())
    exported = sheet.rows.filter(pl.col("qps_mean").is_not_null())
    silent = sheet.rows.filter(pl.col("qps_mean").is_null())
    assert exported.height and silent.height  # the demo has services of both kinds
    for r in exported.iter_rows(named=True):
        shown = table.loc[r["namespace"]]
        assert shown[col["qps_mean"]] == f"{r['qps_mean']:,.1f}" and shown[col["qps_peak"]] == f"{r['qps_peak']:,.1f}"
        assert shown[col["p99"]] == f"{r['latency_p99_ms']:,.1f}"
        assert shown[col["mean_ms"]] == f"{r['latency_mean_ms']:,.1f}"
    for ns in silent["namespace"]:
        assert table.loc[ns, col["qps_mean"]] == table.loc[ns, col["p99"]] == text("usage.not_exported", zh)
    assert shows(at.caption, "serving.exported_count", zh, exported=exported.height, services=sheet.rows.height)


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
    assert set(at.dataframe[-1].value[text("usage.col.qps_mean")]) == {text("usage.not_exported")}


def test_the_usage_page_without_metrics_says_there_is_nothing_yet():
    at = open_page("app_pages/usage.py", persona="li.na")
    no_exceptions(at)
    assert shows(at.info, "usage.no_runs")


def _bind(ctx, actor, form: dict, namespace: str, kind: str) -> None:
    """A standard request granted through the services, then bound to a demo fleet namespace (as the
    demo history does: the demo samples exist only for the fleet's namespaces)."""
    from core.lifecycle import services as svc
    from core.lifecycle.persistence import AllocationRow, RequestRow
    from core.db.session import unit_of_work
    from sqlalchemy import select

    view = svc.submit(sessions=ctx.sessions, actor=actor, form={**form, "start_date": clock.iso(1)})
    with unit_of_work(ctx.sessions) as s:
        s.scalars(select(AllocationRow).where(AllocationRow.request_id == view["id"])).one().namespace = namespace
        s.get(RequestRow, view["id"]).demand_type = kind


@pytest.fixture
def two_departments(demo_metrics):
    """Digital's training run and service, marketing's training run and service (demo namespaces)."""
    from tests.support.forms import TRAINING
    from tests.support.people import APPLICANT, OTHER_DEPT

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


@pytest.mark.parametrize(("persona", "lang"), [("zhang.wei", "en"), ("zhou.lei", "zh-CN")])
def test_the_applicant_and_their_head_see_their_departments_run_and_service_only(two_departments, persona, lang):
    from core.org import load_org

    digital = load_org().departments["digital"]
    department = digital.name_zh if lang == "zh-CN" else digital.name_en
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
    assert shows(at.info, "usagescope.whose.department", lang, department=department), [i.value for i in at.info]
