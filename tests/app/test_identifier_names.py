"""AppTest: the request and allocation tables name routes, step statuses, audit actions and
provisioning backends in the page's language, never by their raw ids."""

from __future__ import annotations

from datetime import date

from core.lifecycle import services as lifecycle
from tests.app.conftest import no_exceptions, open_page
from tests.app.test_allocation_pages import _form, _people

RAW = ("standard_auto", "standard_ops", "request.transition", "request.created", "pending", "plan")


def _two_requests(ctx) -> tuple[int, int]:
    """A standard request (approved and provisioned at once) and a larger one waiting for HQ ops."""
    owner = _people()["zhang.wei"]
    try:
        small = lifecycle.submit(sessions=ctx.sessions, actor=owner, form={**_form(2), "start_date": date.today().isoformat()})
        medium = lifecycle.submit(sessions=ctx.sessions, actor=owner, form=_form(16))
    finally:
        ctx.engine.dispose()
    assert (small["provisioning"]["status"], medium["status"]) == ("active", "submitted")
    return small["id"], medium["id"]


def _cells(at, column: str) -> list[str]:
    return [str(v) for frame in at.dataframe if column in frame.value.columns for v in frame.value[column]]


def test_my_requests_shows_routes_step_statuses_and_actions_by_name(app_ctx):
    small, medium = _two_requests(app_ctx)
    at = open_page("app_pages/my_requests.py", lang="zh-CN")
    no_exceptions(at)
    assert sorted(_cells(at, "审批路径")) == ["标准额度，系统自动审批", "超出标准额度，运营审批"]
    at.selectbox(key="myreq_table").select(medium).run()
    no_exceptions(at)
    assert "待处理" in _cells(at, "状态")  # the HQ ops step
    actions = _cells(at, "操作")
    assert actions[:2] == ["创建申请", "状态变更"], actions
    assert "草稿 → 已提交" in _cells(at, "状态变化")
    shown = " ".join(_cells(at, "审批路径") + _cells(at, "状态") + actions + _cells(at, "原因"))
    assert not [raw for raw in RAW if raw in shown]


def test_allocations_and_approvals_name_the_backend_and_the_route(app_ctx):
    _two_requests(app_ctx)
    at = open_page("app_pages/allocations.py", lang="zh-CN")
    no_exceptions(at)
    assert _cells(at, "交付方式") == ["清单交付（GitOps）"]
    at = open_page("app_pages/approvals.py", persona="li.na", lang="en")
    no_exceptions(at)
    assert _cells(at, "Route") == ["above standard, ops"]
