"""Support requests between provinces and HQ (issue 15, point 1): raised by Jiangsu's ops on
js-pool (A800-80GB), approved by HQ ops with a donor pool, the quota moved on the clusters' scheduler
queues (plan backend renders, live backend applies to the Kubernetes API test server), notices to
both sides, adjustment records, and the automatic return by the daily step; on SQLite and
PostgreSQL. Scope and permissions; what the capacity figures see during and after the window."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.adjust import support
from core.adjust.persistence import AdjustmentRow
from core.adjust.support_persistence import quota_shift
from core.adjust.support_states import InvalidSupportTransition
from core.cluster.backends import LiveBackend, PlanBackend
from core.cluster.manifests import load_cluster_settings
from core.db.session import unit_of_work
from core.errors import InputError, NotFound
from core.identity import Identity, PermissionDenied
from core.lifecycle import capacity as cap
from core.lifecycle.persistence import AllocationRow, RequestRow
from core.org import load_org
from tests.support import clock
from tests.support.people import APPLICANT, HQ_OPS, PROV_OPS

ORG = load_org()
ZJ_OPS = Identity("ma.zj", "马浙", "ma.zj@example.com", "prov_ops", department="浙江信通公司", province="ZJ", level="L1")
DONOR = "hq-mm"  # A800-80GB at HQ, like js-pool


def _raise(ctx, **over):
    args = dict(pool="js-pool", gpus=16, starts_on=clock.day(0), ends_on=clock.day(7), reason="inference pods pending",
                namespace="js-chat", deployment="chat-api")
    return support.raise_request(sessions=ctx.sessions, actor=PROV_OPS, **(args | over))


def _queue_gpus(api, pool):
    spec = api.store[("ClusterQueue", None, pool)]["spec"]
    return int(spec["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"])


def _records(ctx, kind):
    with unit_of_work(ctx.sessions) as s:
        return [(r.subject, r.before, r.after, r.actor, r.automatic)
                for r in s.scalars(select(AdjustmentRow).where(AdjustmentRow.kind == kind).order_by(AdjustmentRow.id))]


def _outbox(ctx):
    from core.notifications.outbox import OUTBOX

    with unit_of_work(ctx.sessions) as s:
        return {(r.template, r.recipient_id) for r in s.execute(select(OUTBOX))}


def test_raise_approve_transfer_and_automatic_return_through_the_plan_backend(ctx):
    raised = _raise(ctx)
    assert raised["status"] == "open" and raised["unit"] == "JS" and raised["gpu_model"] == "A800-80GB"
    assert ("support_raised", "li.na") in _outbox(ctx)  # HQ ops hear of it

    options = support.donor_options(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"])
    assert {r["pool"] for r in options["pools"]} == {"hq-mm", "hq-sci", "hq-dynamic"}
    assert options["suggested"] == "hq-mm"  # most headroom among non-reserve pools of the model

    done = support.approve(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"], donor_pool=DONOR,
                           reason="HQ multimodal pool idle", backend=PlanBackend())
    assert done["status"] == "active" and done["donor_pool"] == DONOR and done["donor_unit"] == "HQ"
    assert done["cluster"]["ok"] and done["cluster"]["sizes"] == {DONOR: 128 - 16, "js-pool": 64 + 16}
    rendered = "".join(c["manifests_yaml"] for c in done["cluster"]["clusters"])
    assert "nominalQuota: '112'" in rendered and "nominalQuota: '80'" in rendered
    recs = _records(ctx, "support_transfer")
    assert [(r[0], r[1]["quota"], r[2]["quota"], r[3], r[4]) for r in recs] == [
        (f"pool:{DONOR}", 128, 112, "li.na", False), ("pool:js-pool", 64, 80, "li.na", False)]
    sent = _outbox(ctx)
    assert {("support_approved", "chen.jing"), ("support_approved", "wu.hao"), ("support_approved", "li.na")} <= sent

    with unit_of_work(ctx.sessions) as s:  # the transfer counts in its window, and not after it
        assert quota_shift(s, clock.day(0), clock.day(7)) == {DONOR: -16, "js-pool": 16}
        assert quota_shift(s, clock.day(7), clock.day(8)) == {}
        assert quota_shift(s, clock.day(5), clock.day(9)) == {DONOR: -16}  # the receiver's gain ends mid-window

    assert support.run_transfers(sessions=ctx.sessions, today=clock.day(6), backend=PlanBackend()) == {
        "activated": [], "returned": [], "failed": []}
    back = support.run_transfers(sessions=ctx.sessions, today=clock.day(7), backend=PlanBackend())
    assert back["returned"] == [raised["id"]]
    assert support.run_transfers(sessions=ctx.sessions, today=clock.day(7), backend=PlanBackend())["returned"] == []
    shown = support.get_request(sessions=ctx.sessions, actor=PROV_OPS, request_id=raised["id"])
    assert shown["status"] == "returned" and shown["returned_by"] == "system"
    assert shown["cluster"]["sizes"] == {DONOR: 128, "js-pool": 64}
    last = _records(ctx, "support_transfer")[-2:]
    assert [(r[1]["quota"], r[2]["quota"], r[3], r[4]) for r in last] == [(112, 128, "system", True),
                                                                           (80, 64, "system", True)]
    with unit_of_work(ctx.sessions) as s:
        assert quota_shift(s, clock.day(0), clock.day(7)) == {}
    assert ("support_returned", "chen.jing") in _outbox(ctx)


def test_a_future_window_starts_on_its_day_through_the_live_backend(ctx, kube):
    api, client = kube
    backend = LiveBackend(ORG, load_cluster_settings(), clients={c: client for c in ORG.clusters})
    raised = _raise(ctx, starts_on=clock.day(2), ends_on=clock.day(5), gpus=8)
    done = support.approve(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"], donor_pool="hq-sci",
                           backend=backend)
    assert done["status"] == "approved" and done["cluster"] is None and api.objects() == []
    assert support.run_transfers(sessions=ctx.sessions, today=clock.day(1), backend=backend)["activated"] == []
    assert support.run_transfers(sessions=ctx.sessions, today=clock.day(2), backend=backend)["activated"] == [raised["id"]]
    assert (_queue_gpus(api, "hq-sci"), _queue_gpus(api, "js-pool")) == (56, 72)
    assert support.run_transfers(sessions=ctx.sessions, today=clock.day(5), backend=backend)["returned"] == [raised["id"]]
    assert (_queue_gpus(api, "hq-sci"), _queue_gpus(api, "js-pool")) == (64, 64)


def test_a_failed_push_leaves_the_transfer_approved_and_the_daily_step_finishes_it(ctx, kube):
    api, client = kube
    backend = LiveBackend(ORG, load_cluster_settings(), clients={c: client for c in ORG.clusters})
    raised = _raise(ctx, gpus=4)
    api.inject("500", method="POST", name="js-pool")  # the receiver's queue cannot be created
    done = support.approve(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"], donor_pool=DONOR,
                           backend=backend)
    assert done["status"] == "approved" and not done["cluster"]["ok"]
    assert support.run_transfers(sessions=ctx.sessions, today=clock.day(0), backend=backend)["activated"] == [raised["id"]]
    assert _queue_gpus(api, "js-pool") == 68


def test_capacity_checks_count_the_transfer_in_its_window_and_not_after(ctx):
    raised = _raise(ctx, gpus=16)
    support.approve(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"], donor_pool=DONOR,
                    backend=PlanBackend())
    with unit_of_work(ctx.sessions) as s:
        during = cap.free_by_pool(s, ORG, start=clock.day(1), end=clock.day(3))
        after = cap.free_by_pool(s, ORG, start=clock.day(8), end=clock.day(9))
    assert (during[DONOR], during["js-pool"]) == (128 - 16, 64 + 16)
    assert (after[DONOR], after["js-pool"]) == (128, 64)


def test_scope_and_permissions(ctx):
    raised = _raise(ctx)
    with pytest.raises(PermissionDenied):
        _raise(ctx, pool="zj-pool")  # Jiangsu's ops ask only for Jiangsu's pools
    with pytest.raises(PermissionDenied):
        support.raise_request(sessions=ctx.sessions, actor=APPLICANT, pool="hq-ft", gpus=1, starts_on=clock.day(0),
                              ends_on=clock.day(1), reason="x", namespace="ns")
    with pytest.raises(PermissionDenied):
        support.list_requests(sessions=ctx.sessions, actor=APPLICANT)
    assert support.list_requests(sessions=ctx.sessions, actor=ZJ_OPS) == []
    with pytest.raises(NotFound):
        support.get_request(sessions=ctx.sessions, actor=ZJ_OPS, request_id=raised["id"])
    for who in (PROV_OPS, ZJ_OPS, APPLICANT):
        with pytest.raises(PermissionDenied):
            support.approve(sessions=ctx.sessions, actor=who, request_id=raised["id"], donor_pool=DONOR,
                            backend=PlanBackend())
    assert [r["id"] for r in support.list_requests(sessions=ctx.sessions, actor=HQ_OPS)] == [raised["id"]]
    support.reject(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"], reason="use the provincial reserve")
    with pytest.raises(InvalidSupportTransition):
        support.approve(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"], donor_pool=DONOR,
                        backend=PlanBackend())


@pytest.mark.parametrize(("over", "field"), [
    ({"pool": "nope"}, "pool"), ({"pool": "zj-pool"}, None), ({"gpus": 0}, "gpus"), ({"gpus": 10_000}, "gpus"),
    ({"starts_on": clock.day(-1)}, "starts_on"), ({"ends_on": clock.day(0)}, "ends_on"),
    ({"ends_on": clock.day(400)}, "ends_on"), ({"reason": "  "}, "reason"), ({"namespace": "Bad_NS"}, "namespace"),
    ({"deployment": "x y"}, "deployment"), ({"gpu_model": "T4"}, "gpu_model"),
])
def test_bad_input_names_the_field(ctx, over, field):
    actor = HQ_OPS if over.get("pool") == "zj-pool" else PROV_OPS
    with pytest.raises(InputError) as err:
        support.raise_request(sessions=ctx.sessions, actor=actor, **({"pool": "js-pool", "gpus": 4,
                              "starts_on": clock.day(0), "ends_on": clock.day(3), "reason": "r",
                              "namespace": "ns"} | over))
    assert err.value.field == (field or "pool")  # zj-pool: Ascend-910B exists nowhere else


def test_approve_refuses_a_donor_of_another_model_or_without_headroom(ctx):
    raised = _raise(ctx, gpus=40)
    for donor in ("js-pool", "hq-lang", "hq-dynamic"):  # itself, H800, a reserve of 32
        with pytest.raises(InputError) as err:
            support.approve(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"], donor_pool=donor,
                            backend=PlanBackend())
        assert err.value.field == "donor_pool"


def test_node_addition_is_recorded_with_its_approval(ctx):
    out = support.record_node_addition(sessions=ctx.sessions, actor=PROV_OPS, pool="js-pool", nodes=2, gpus=16,
                                       approved_by="wu.js", reason="saturation alert")
    rec = _records(ctx, "node_addition")
    assert rec == [("pool:js-pool", {"pool": "js-pool", "nodes_added": 0},
                    {"pool": "js-pool", "nodes_added": 2, "gpus_added": 16, "cluster": "js-nanjing",
                     "approved_by": "wu.js", "support_request": None}, PROV_OPS.id, False)] and out["id"]
    with pytest.raises(InputError):
        support.record_node_addition(sessions=ctx.sessions, actor=PROV_OPS, pool="js-pool", nodes=1, gpus=8,
                                     approved_by=PROV_OPS.id, reason="x")  # nobody approves their own
    with pytest.raises(PermissionDenied):
        support.record_node_addition(sessions=ctx.sessions, actor=ZJ_OPS, pool="js-pool", nodes=1, gpus=8,
                                     approved_by="someone", reason="x")


def _book(ctx, pool: str, gpus: int, ends_on) -> int:
    """An allocation holding ``gpus`` of ``pool`` from today to ``ends_on`` (what a grant leaves)."""
    now = clock.now()
    with unit_of_work(ctx.sessions) as s:
        req = RequestRow(status="active", created_by="chen.jing", created_at=now, updated_at=now, form={}, flags=[],
                         pool_id=pool)
        s.add(req)
        s.flush()
        alloc = AllocationRow(request_id=req.id, pool_id=pool, gpus=gpus, status="active", starts_on=clock.day(0),
                              ends_on=ends_on, created_at=now, attempts=0)
        s.add(alloc)
        s.flush()
        return alloc.id


def test_an_early_return_is_refused_while_the_receivers_bookings_need_the_transferred_gpus(ctx):
    raised = _raise(ctx)  # 16 GPUs into js-pool (64) for a week
    support.approve(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"], donor_pool=DONOR, reason="idle",
                    backend=PlanBackend())
    with unit_of_work(ctx.sessions) as s:
        assert cap.free_by_pool(s, ORG, start=clock.day(0), end=clock.day(7))["js-pool"] == 80
    first = _book(ctx, "js-pool", 64, clock.day(7))
    _book(ctx, "js-pool", 10, clock.day(3))  # 74 of the 80 until day 3: 10 of the transferred GPUs in use

    with pytest.raises(InputError) as refused:
        support.return_transfer(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"], reason="done early",
                                backend=PlanBackend())
    assert refused.value.key == "support.return_overbooked" and refused.value.field == "support_request"
    assert refused.value.params["short"] == 10 and refused.value.params["pool"] == "js-pool"
    shown = support.get_request(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"])
    assert shown["status"] == "active"  # nothing changed
    with unit_of_work(ctx.sessions) as s:
        assert quota_shift(s, clock.day(0), clock.day(7)) == {DONOR: -16, "js-pool": 16}

    with unit_of_work(ctx.sessions) as s:  # the first booking ends: 10 GPUs in use, 64 without the transfer
        s.get(AllocationRow, first).status = "released"
    done = support.return_transfer(sessions=ctx.sessions, actor=HQ_OPS, request_id=raised["id"], reason="done early",
                                   backend=PlanBackend())
    assert done["status"] == "returned" and done["returned_by"] == HQ_OPS.id
