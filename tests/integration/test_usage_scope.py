"""Usage sheets in the reader's scope (issue 4), on SQLite and PostgreSQL: the namespace list, the
training sheet and the inference sheet for every role, with namespaces of three departments and
two provinces — allocated through the real services — and namespaces that only the rollups know
(the demo fleet's provincial services, which no allocation names).

The permission matrix (test_permission_matrix) pins ok/hidden/denied per role for one subject;
this file pins the exact sets each role reads, that a hidden namespace is never read from the
metrics source, and that scoping leaves each visible figure as the full sheet has it.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

from core.db.session import unit_of_work
from core.errors import NotFound
from core.identity import PermissionDenied
from core.lifecycle import services as svc
from core.metrics import usage
from core.metrics.persistence import replace_day
from core.metrics.schema import ROLLUP_SCHEMA
from tests.support.people import (
    ADMIN, APPLICANT, COLLEAGUE, COMMITTEE, DEPT_HEAD, EXEC, HQ_OPS, OTHER_DEPT, OTHER_HEAD, PROV_L2,
)
from tests.support.subjects import ZJ_OPS, active as _active, alloc_of as _alloc, form_for as _form

DAY = date(2026, 10, 27)
START, END = datetime(2026, 10, 27, tzinfo=timezone.utc), datetime(2026, 10, 28, tzinfo=timezone.utc)
JS_SERVICE, ZJ_SERVICE = "js-pool-svc-01", "zj-pool-svc-01"  # on the provinces' clusters, no allocation


class _Counting:
    """A metrics source that counts its reads and has no samples."""

    def __init__(self):
        self.reads: list[str] = []

    def series(self, start, end, *, step_s, namespace=None):
        self.reads.append(namespace)
        return pl.DataFrame()


def _row(namespace: str, cluster: str, uuid: str, util: float, model: str = "A800-80GB") -> dict:
    return {"day": DAY, "cluster": cluster, "hostname": f"{cluster}-n1", "uuid": uuid, "model": model,
            "namespace": namespace, "mean_util": util, "peak_util": min(1.0, util + 0.2), "mean_mem": 0.5,
            "peak_mem": 0.7, "allocated_gpu_hours": 24.0, "used_gpu_hours": 24.0 * util, "energy_kwh": 7.5,
            "samples": 1440, "expected_samples": 1440, "coverage": 1.0}


@pytest.fixture
def fleet(ctx):
    """Namespaces by owner: digital (HQ), marketing (HQ), Jiangsu ICT, plus a Jiangsu and a Zhejiang
    service that only the rollups know, and an idle GPU; one day of rollups for all of them."""
    digital = _active(ctx, "hq").namespace
    js = _active(ctx, "js").namespace
    view = svc.submit(sessions=ctx.sessions, actor=OTHER_DEPT, form=_form("hq", department="marketing",
                                                                           project="P-CS-04"))
    marketing = _alloc(ctx, view["id"]).namespace
    assert len({digital, js, marketing}) == 3 and all((digital, js, marketing))
    rows = [_row(digital, "hq-beijing-2", "GPU-d", 0.81, "H20"), _row(marketing, "hq-beijing-2", "GPU-m", 0.12, "H20"),
            _row(js, "js-nanjing", "GPU-j", 0.55), _row(JS_SERVICE, "js-nanjing", "GPU-js", 0.33),
            _row(ZJ_SERVICE, "zj-hangzhou", "GPU-zj", 0.44, "Ascend-910B"), _row("", "hq-beijing-2", "GPU-idle", 0.0, "H20")]
    with unit_of_work(ctx.sessions) as s:
        replace_day(s, DAY, pl.DataFrame(rows, schema=ROLLUP_SCHEMA))
    return {"digital": digital, "marketing": marketing, "js": js, "js_service": JS_SERVICE, "zj_service": ZJ_SERVICE}


READERS = {
    "applicant": (APPLICANT, {"digital"}),
    "colleague": (COLLEAGUE, {"digital"}),
    "other_dept": (OTHER_DEPT, {"marketing"}),
    "dept_head": (DEPT_HEAD, {"digital"}),
    "other_head": (OTHER_HEAD, {"marketing"}),
    "prov_js": (PROV_L2, {"js", "js_service"}),
    "prov_zj": (ZJ_OPS, {"zj_service"}),
    "hq_ops": (HQ_OPS, {"digital", "marketing", "js", "js_service", "zj_service"}),
    "admin": (ADMIN, {"digital", "marketing", "js", "js_service", "zj_service"}),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_each_reader_lists_exactly_the_namespaces_of_their_scope(ctx, fleet, reader):
    actor, names = READERS[reader]
    seen = usage.namespaces_seen(sessions=ctx.sessions, actor=actor, first=DAY, last=DAY)
    assert set(seen["namespace"]) == {fleet[n] for n in names}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_the_inference_sheet_keeps_the_scope_and_the_full_sheets_figures(ctx, fleet, reader):
    actor, names = READERS[reader]
    full = usage.inference_sheet(sessions=ctx.sessions, actor=ADMIN, month=DAY, now=END).rows
    mine = usage.inference_sheet(sessions=ctx.sessions, actor=actor, month=DAY, now=END).rows
    assert set(mine["namespace"]) == {fleet[n] for n in names}
    assert mine.to_dicts() == full.filter(pl.col("namespace").is_in(mine["namespace"].implode())).to_dicts()
    row = mine.filter(pl.col("namespace") == fleet[sorted(names)[0]]).to_dicts()[0]
    assert row["allocated_gpu_hours"] == 24.0 and row["energy_kwh"] == 7.5  # one GPU-day each


@pytest.mark.parametrize("reader", sorted(READERS))
def test_the_training_sheet_reads_the_source_only_for_a_namespace_in_scope(ctx, fleet, reader):
    actor, names = READERS[reader]
    for name, namespace in fleet.items():
        source = _Counting()
        if name in names:
            sheet = usage.training_sheet(sessions=ctx.sessions, actor=actor, source=source, namespace=namespace,
                                         start=START, end=END)
            assert sheet.namespace == namespace and source.reads == [namespace]
        else:
            with pytest.raises(NotFound) as err:
                usage.training_sheet(sessions=ctx.sessions, actor=actor, source=source, namespace=namespace,
                                     start=START, end=END)
            assert err.value.key == "usagescope.not_found" and source.reads == []


def test_a_namespace_out_of_scope_and_one_that_never_existed_give_the_same_answer(ctx, fleet):
    answers = []
    for namespace in (fleet["marketing"], "never-existed-0"):
        with pytest.raises(NotFound) as err:
            usage.training_sheet(sessions=ctx.sessions, actor=APPLICANT, source=_Counting(), namespace=namespace,
                                 start=START, end=END)
        answers.append((err.value.key, sorted(set(err.value.params) - {"namespace"})))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("actor", [EXEC, COMMITTEE], ids=["executive", "committee"])
def test_executives_and_the_committee_read_no_usage_sheet(ctx, fleet, actor):
    source = _Counting()
    for call in (lambda: usage.usage_scope(sessions=ctx.sessions, actor=actor),
                 lambda: usage.namespaces_seen(sessions=ctx.sessions, actor=actor, first=DAY, last=DAY),
                 lambda: usage.inference_sheet(sessions=ctx.sessions, actor=actor, month=DAY, now=END),
                 lambda: usage.training_sheet(sessions=ctx.sessions, actor=actor, source=source,
                                              namespace=fleet["digital"], start=START, end=END)):
        with pytest.raises(PermissionDenied):
            call()
    assert source.reads == []


def test_the_scope_names_whose_data_it_is(ctx, fleet):
    assert usage.usage_scope(sessions=ctx.sessions, actor=HQ_OPS).kind == "all"
    dept = usage.usage_scope(sessions=ctx.sessions, actor=DEPT_HEAD)
    assert (dept.kind, dept.unit, dept.namespaces) == ("department", "digital", frozenset({fleet["digital"]}))
    prov = usage.usage_scope(sessions=ctx.sessions, actor=PROV_L2)
    assert (prov.kind, prov.unit, prov.namespaces, prov.clusters) == (
        "province", "JS", frozenset({fleet["js"]}), frozenset({"js-nanjing"}))
