"""The demo seed: one call fills an empty database with data in many states; a second does nothing."""

from collections import Counter

from core.demo import seed
from core.identity import load_personas
from core.lifecycle import provisioning
from core.lifecycle import services as lifecycle
from core.services import estimates as estimates_svc


def test_seed_creates_estimates_outcomes_and_requests_in_many_states_once(ctx):
    made = seed(ctx.sessions)
    assert made == {"estimates": 4, "outcomes": 4, "requests": 17, "adjustments": 2}
    applicant = next(p for p in load_personas() if p.id == "zhang.wei")
    states = Counter(r["status"] for r in lifecycle.list_requests(sessions=ctx.sessions, actor=applicant))
    assert {"draft", "active", "submitted", "in_review", "queued", "expiring", "extended", "returned", "reclaimed",
            "rejected", "cancelled"} <= set(states), states
    assert len(estimates_svc.corrections(sessions=ctx.sessions)) >= 2
    assert any(r["status"] == "in_review" for r in lifecycle.pending_approvals(
        sessions=ctx.sessions, actor=next(p for p in load_personas() if p.id == "zhou.lei")))
    # the Jiangsu requests: two waiting for the L1 review (a queue to work through), one for
    # L2, one whose cluster was unreachable
    people = {p.id: p for p in load_personas()}
    # two waiting for HQ ops alone (each browser flow language takes one), each fitting its pool
    hq = [r for r in lifecycle.pending_approvals(sessions=ctx.sessions, actor=people["li.na"]) if r["status"] == "submitted"]
    assert [[s["role"] for s in r["steps"]] for r in hq] == [["hq_ops"]] * 2
    assert all(r["capacity"]["fits"] for r in hq)
    l1 = lifecycle.pending_approvals(sessions=ctx.sessions, actor=people["chen.jing"])
    l2 = lifecycle.pending_approvals(sessions=ctx.sessions, actor=people["wu.hao"])
    assert [[s["role"] for s in r["steps"] if s["status"] == "pending"] for r in l1] == [["prov_ops_l1", "prov_ops_l2"]] * 2
    assert {r["id"] for r in l1} < {r["id"] for r in l2} and len(l2) == 3
    js = Counter(r["status"] for r in lifecycle.list_requests(sessions=ctx.sessions, actor=people["chen.jing"]))
    assert js == {"submitted": 2, "in_review": 1, "provisioning_failed": 1, "provisioning": 1}, js
    # the stalled run is offered for recovery
    stalled = next(r["id"] for r in lifecycle.list_requests(sessions=ctx.sessions, actor=people["chen.jing"])
                   if r["status"] == "provisioning")
    assert provisioning.stalled(sessions=ctx.sessions) == [stalled]
    failed = next(r for r in lifecycle.list_requests(sessions=ctx.sessions, actor=people["chen.jing"])
                  if r["status"] == "provisioning_failed")
    sheet = provisioning.allocation_sheet(sessions=ctx.sessions, actor=people["wu.hao"], request_id=failed["id"])
    assert sheet["provisioning"]["failed_step"].startswith("Namespace/")
    assert sheet["provisioning"]["error"]["key"] == "cluster.unreachable"
    # Retry (the settings' plan backend) finishes it
    assert provisioning.retry(sessions=ctx.sessions, actor=people["wu.hao"], request_id=failed["id"])["status"] == "active"
    # an inference service's autoscaling policy, set up and then tuned: two manual changes recorded
    from core.adjust import services as adjust

    policies = adjust.list_policies(sessions=ctx.sessions, actor=people["li.na"])
    assert [(p["namespace"], p["util_low"], p["max_replicas"]) for p in policies] == [("hq-inf-svc-03", 0.2, 10)]
    changes = adjust.list_adjustments(sessions=ctx.sessions, actor=people["li.na"], kind="scale_policy_change")
    assert [(c["before"] or {}).get("util_low") for c in changes] == [0.3, None]  # newest first
    assert seed(ctx.sessions) == {}


def test_the_demo_board_publishes_last_months_report_once(ctx):
    from datetime import date

    from core.demo import publish_demo_board
    from core.reports import service as reports

    seed(ctx.sessions)
    assert publish_demo_board(ctx.sessions, today=date(2026, 11, 29)) == {"month": "2026-10", "status": "published"}
    assert publish_demo_board(ctx.sessions, today=date(2026, 11, 29))["status"] == "already published"
    executive = next(p for p in load_personas() if p.id == "wang.qiang")
    published = reports.latest_published(sessions=ctx.sessions, actor=executive, month="2026-10", scope="company")
    assert published is not None and published["deidentified"] is True


def test_the_demo_board_seeded_before_9_utc_is_not_published_in_the_future(ctx):
    """The tests' clock stands at 02:00 UTC (10:00 in Shanghai): a board seeded then reads as
    published then, not at 09:00 UTC (17:00 in Shanghai) of the same day, hours ahead."""
    from core.clock import utc_now
    from core.demo import publish_demo_board
    from core.reports import service as reports
    from tests.support.clock import today

    assert utc_now().hour < 9
    seed(ctx.sessions)
    made = publish_demo_board(ctx.sessions)
    executive = next(p for p in load_personas() if p.id == "wang.qiang")
    published = reports.latest_published(sessions=ctx.sessions, actor=executive, month=made["month"], scope="company")
    assert published["published_at"].date() == today() and published["published_at"] <= utc_now()
