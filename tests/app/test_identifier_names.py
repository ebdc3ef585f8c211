"""AppTest: the request and allocation tables name routes, step statuses, audit actions and
provisioning backends in the page's language, never by their raw ids."""

from __future__ import annotations

from core.lifecycle import services as lifecycle
from tests.support import app_scenarios as scenarios
from tests.support.app_run import no_exceptions, open_page, text

RAW = ("standard_auto", "standard_ops", "request.transition", "request.created", "pending", "plan")


def _two_requests(ctx) -> tuple[int, int]:
    """A standard request (approved and provisioned at once) and a larger one waiting for HQ ops."""
    owner = scenarios.persona("zhang.wei")
    try:
        small = lifecycle.submit(sessions=ctx.sessions, actor=owner, form=scenarios.form(2, start_offset=0))
        medium = lifecycle.submit(sessions=ctx.sessions, actor=owner, form=scenarios.form(16))
    finally:
        ctx.engine.dispose()
    assert (small["provisioning"]["status"], medium["status"]) == ("active", "submitted")
    return small["id"], medium["id"]


def _cells(at, column: str) -> list[str]:
    return [str(v) for frame in at.dataframe if column in frame.value.columns for v in frame.value[column]]


def test_my_requests_shows_routes_step_statuses_and_actions_by_name(app_ctx):
    zh = "zh-CN"
    col = {name: text(f"req.col.{name}", zh) for name in ("tier", "status", "action", "change", "reason")}
    small, medium = _two_requests(app_ctx)
    at = open_page("app_pages/my_requests.py", lang=zh)
    no_exceptions(at)
    assert sorted(_cells(at, col["tier"])) == sorted([text("tier_name.standard_auto", zh), text("tier_name.standard_ops", zh)])
    at.selectbox(key="myreq_table").select(medium).run()
    no_exceptions(at)
    assert text("step_status.pending", zh) in _cells(at, col["status"])  # the HQ ops step
    actions = _cells(at, col["action"])
    assert actions[:2] == [text("audit_action.request.created", zh), text("audit_action.request.transition", zh)], actions
    assert f"{text('status.draft', zh)} → {text('status.submitted', zh)}" in _cells(at, col["change"])
    shown = " ".join(_cells(at, col["tier"]) + _cells(at, col["status"]) + actions + _cells(at, col["reason"]))
    assert not [raw for raw in RAW if raw in shown]


def test_allocations_and_approvals_name_the_backend_and_the_route(app_ctx):
    _two_requests(app_ctx)
    at = open_page("app_pages/allocations.py", lang="zh-CN")
    no_exceptions(at)
    assert _cells(at, text("alloc.col.backend", "zh-CN")) == [text("backend_name.plan", "zh-CN")]
    at = open_page("app_pages/approvals.py", persona="li.na", lang="en")
    no_exceptions(at)
    assert _cells(at, text("req.col.tier")) == [text("tier_name.standard_ops")]
