"""AppTest: the Reclaim page — a section switcher that loads only the chosen section, the owner's
return, the ops-only monthly L1 pool review (allocated vs used GPU-hours, notes, proposals), and
beside the candidates the month's black list saying why an entry is not a candidate."""

from __future__ import annotations

import polars as pl
import pytest

from core.metrics.schema import ROLLUP_SCHEMA
from tests.support import app_scenarios as scenarios
from tests.support import clock
from tests.support.app_run import no_exceptions, open_page, shows, text

PAGE = "app_pages/reclaim.py"
ALL_SECTIONS = ["own", "expiring", "extensions", "candidates", "records", "pool_review"]
LOADERS = ("expiring_allocations", "list_extensions", "list_candidates", "list_records", "pool_review")


def _button(at, key: str, lang: str = "en"):
    """The button (or form submit button) labelled with the catalog text of ``key``."""
    label = text(key, lang)
    matches = [b for b in at.button if b.label == label]
    assert len(matches) == 1, f"{len(matches)} buttons {label!r}; have {[b.label for b in at.button]}"
    return matches[0]


@pytest.mark.parametrize("persona,lang,sections", [
    ("zhang.wei", "en", ALL_SECTIONS[:-1]),   # applicants: no pool review
    ("li.na", "zh-CN", ALL_SECTIONS),
    ("zhao.min", "en", ALL_SECTIONS),
])
def test_the_reclaim_page_opens_on_the_first_section_with_the_sections_of_the_role(persona, lang, sections):
    at = open_page(PAGE, persona=persona, lang=lang)
    no_exceptions(at)
    assert not at.tabs
    switcher = at.segmented_control(key="reclaim_section")
    assert len(switcher.options) == len(sections)
    assert switcher.value == "own"


@pytest.mark.parametrize("persona", ["li.na", "zhang.wei"])
def test_every_section_opens_without_errors(persona):
    at = open_page(PAGE, persona=persona)
    keys = ALL_SECTIONS if persona == "li.na" else ALL_SECTIONS[:-1]
    for key in keys:
        at.segmented_control(key="reclaim_section").set_value(key).run()
        no_exceptions(at)
        assert not at.error, (key, [e.value for e in at.error])  # no permission or input error either


def test_only_the_chosen_section_reads_its_data(monkeypatch):
    from core.reclaim import services

    calls: list[str] = []
    for name in LOADERS:
        real = getattr(services, name)
        monkeypatch.setattr(services, name, lambda *a, _n=name, _r=real, **kw: (calls.append(_n), _r(*a, **kw))[1])
    at = open_page(PAGE, persona="li.na")
    no_exceptions(at)
    assert calls == []  # the first section (return / extend) reads none of the others' data
    at.segmented_control(key="reclaim_section").set_value("records").run()
    no_exceptions(at)
    assert calls == ["list_records"]
    calls.clear()
    at.segmented_control(key="reclaim_section").set_value("pool_review").run()
    assert calls == ["pool_review"]


def test_the_owner_returns_an_allocation_and_sees_the_record(app_ctx):
    from core.lifecycle import services as lifecycle

    ctx = app_ctx
    # starting today: provisioned at once, so the owner has an allocation to return
    lifecycle.submit(sessions=ctx.sessions, actor=scenarios.people()["zhang.wei"], form=scenarios.form(4, start_offset=0))
    at = open_page(PAGE, persona="zhang.wei")
    no_exceptions(at)
    at.text_area(key="own_reason").input("任务提前完成")
    _button(at, "reclaim.return").click().run()  # see what a return deletes
    no_exceptions(at)
    # the dry run first: nothing deleted yet, the objects listed, then the owner confirms
    assert shows(at.warning, "reclaim.return_preview", gpus=4), [w.value for w in at.warning]
    assert text("uitext.k8s_kind.ResourceQuota") in at.dataframe[0].value.to_string()
    assert not shows(at.success, "reclaim.returned")
    _button(at, "reclaim.return_confirm").click().run()
    no_exceptions(at)
    assert shows(at.success, "reclaim.returned")
    at.segmented_control(key="reclaim_section").set_value("records").run()
    no_exceptions(at)
    records = at.dataframe[0].value
    assert len(records) == 1 and list(records[text("reclaim.col.voluntary")]) == ["✓"]


def _l1_allocation_with_usage(ctx, month: str) -> tuple[int, str]:
    """An active allocation moved into the L1 language pool, with 2 days of rollups in ``month``:
    2 GPUs x 24 h = 48 allocated GPU-h a day at util 0.25 → 96 allocated, 24 used GPU-h."""
    from sqlalchemy import select

    from core.db.session import unit_of_work
    from core.lifecycle import services as lifecycle
    from core.lifecycle.persistence import AllocationRow
    from core.metrics.persistence import replace_day
    from core.metrics.schema import ROLLUP_SCHEMA
    from core.reclaim.warnings import month_bounds

    view = lifecycle.submit(sessions=ctx.sessions, actor=scenarios.people()["zhang.wei"],
                            form=scenarios.form(2, start_offset=0))  # provisioned at once: it has a namespace
    with unit_of_work(ctx.sessions) as s:
        alloc = s.scalars(select(AllocationRow).where(AllocationRow.request_id == view["id"])).one()
        alloc.pool_id = "hq-lang"  # L1 pools go through committee approval; the review only reads
        namespace = alloc.namespace
    first, _ = month_bounds(month)
    for day in (first, first.replace(day=2)):
        rows = [{"day": day, "cluster": "hq-beijing-1", "hostname": "n1", "uuid": f"GPU-{g}", "model": "H800-SXM",
                 "namespace": namespace, "mean_util": 0.25, "peak_util": 0.5, "mean_mem": 0.3, "peak_mem": 0.4,
                 "allocated_gpu_hours": 24.0, "used_gpu_hours": 6.0, "energy_kwh": 5.0, "samples": 1440,
                 "expected_samples": 1440, "coverage": 1.0} for g in range(2)]
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, day, pl.DataFrame(rows, schema=ROLLUP_SCHEMA))
    return view["id"], namespace


def test_ops_review_an_l1_pool_see_allocated_vs_used_and_record_a_partial_reclaim_proposal(app_ctx):
    from core.reclaim import services
    from core.reclaim.warnings import previous_month

    ctx = app_ctx
    month = previous_month(clock.today())
    request_id, namespace = _l1_allocation_with_usage(ctx, month)
    at = open_page(PAGE, persona="li.na", lang="en")
    at.segmented_control(key="reclaim_section").set_value("pool_review").run()
    no_exceptions(at)
    assert at.selectbox(key="pr_month").value == month  # the last complete month by default
    at.selectbox(key="pr_pool").set_value("hq-lang").run()
    no_exceptions(at)
    metrics = {m.label: m.value for m in at.metric}
    # 2 days x 2 GPUs x 24 h = 96 allocated GPU-h; 2 x 2 x 6 = 24 used → 25 %
    shown = tuple(metrics[text(f"reclaim.review.{k}")] for k in ("allocated_h", "used_h", "ratio"))
    assert shown == ("96", "24", "25%")
    allocations = at.dataframe[1].value
    assert namespace in set(allocations[text("reclaim.col.namespace")])
    at.radio(key="pr_kind").set_value("partial_reclaim")
    at.selectbox(key="pr_request").set_value(request_id)
    at.number_input(key="pr_gpus").set_value(1)
    at.text_area(key="pr_text").input("进展缓慢，建议收回 1 卡转给多模态组")
    _button(at, "reclaim.review.add").click().run()
    no_exceptions(at)
    assert shows(at.success, "reclaim.saved")
    [pool] = [p for p in services.pool_review(sessions=ctx.sessions, actor=scenarios.people()["li.na"], month=month)
              if p["pool"] == "hq-lang"]
    [entry] = pool["entries"]
    assert (entry["kind"], entry["request_id"], entry["gpus"], entry["actor"]) == ("partial_reclaim", request_id, 1, "li.na")


def test_a_proposal_without_an_allocation_shows_the_error_not_a_traceback():
    at = open_page(PAGE, persona="li.na", lang="en")
    at.segmented_control(key="reclaim_section").set_value("pool_review").run()
    at.radio(key="pr_kind").set_value("transfer")
    at.text_area(key="pr_text").input("move")
    _button(at, "reclaim.review.add").click().run()
    no_exceptions(at)
    assert at.error and not at.success


def _published_board_with_legacy_usage(ctx, month: str) -> None:
    """Last month's board, published, whose black list holds one namespace no allocation held:
    H20 usage on the HQ cluster (the fine-tuning pool), so not known to be an inference service."""
    from core.db.session import unit_of_work
    from core.metrics.persistence import replace_day
    from core.reclaim.warnings import month_bounds
    from core.reports import service as reports

    first, last = month_bounds(month)
    for n in range((last - first).days + 1):
        day = first.fromordinal(first.toordinal() + n)
        row = {"day": day, "cluster": "hq-beijing-2", "hostname": "n1", "uuid": "GPU-1", "model": "H20",
               "namespace": "legacy-ft", "mean_util": 0.004, "peak_util": 0.1, "mean_mem": 0.1, "peak_mem": 0.1,
               "allocated_gpu_hours": 24.0, "used_gpu_hours": 0.1, "energy_kwh": 1.0, "samples": 1440,
               "expected_samples": 1440, "coverage": 1.0}
        with unit_of_work(ctx.sessions) as s:
            replace_day(s, day, pl.DataFrame([row], schema=ROLLUP_SCHEMA))
    ops = scenarios.people()["li.na"]
    draft = reports.build_draft(sessions=ctx.sessions, actor=ops, month=month, scope="company")
    reports.publish(sessions=ctx.sessions, actor=ops, report_id=draft["id"])


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_black_list_entry_that_is_not_a_candidate_says_why_in_the_pages_language(app_ctx, lang):
    from core.reclaim.warnings import previous_month

    month = previous_month(clock.today())
    _published_board_with_legacy_usage(app_ctx, month)
    at = open_page(PAGE, persona="li.na", lang=lang)
    at.segmented_control(key="reclaim_section").set_value("candidates").run()
    no_exceptions(at)
    assert at.selectbox(key="why_month").value == month
    [row] = at.dataframe[0].value.to_dict("records")
    assert row[text("reclaim.col.namespace", lang)] == "legacy-ft"
    assert row[text("reclaim.why.col.candidate", lang)] == text("reclaim.why.not_candidate", lang)
    assert row[text("reclaim.why.col.reasons", lang)] == text("reclaim.why.kind_unknown", lang)
    assert row[text("warn.col.owner", lang)] == text("warn.no_owner", lang)
    assert row[text("reclaim.why.col.lists", lang)].startswith(text("reports.list.lowest_util", lang))
    # another province's ops: nothing of theirs on this board
    at = open_page(PAGE, persona="chen.jing", lang=lang)
    at.segmented_control(key="reclaim_section").set_value("candidates").run()
    no_exceptions(at)
    assert not at.dataframe and shows(at.info, "reclaim.why.empty", lang, month=month)


def test_picking_another_candidate_offers_its_own_next_step_not_the_last_ones(app_ctx):
    """A candidate whose plan is agreed offers only "dismissed"; the next one picked, not reviewed
    yet, must offer its review first, not keep "dismissed" as its default."""
    from core.db.session import unit_of_work
    from core.reclaim.persistence import ReclaimCandidateRow

    now, month = clock.now(), clock.month_start(-1).strftime("%Y-%m")
    with unit_of_work(app_ctx.sessions) as s:
        for namespace, status in (("svc-agreed", "plan_agreed"), ("svc-new", "detected")):
            s.add(ReclaimCandidateRow(namespace=namespace, month=month, status=status, unit="HQ", pool_id="hq-inf",
                                      gpus=2, days_counted=20, created_at=now, updated_at=now))
    at = open_page(PAGE, persona="li.na")
    at.segmented_control(key="reclaim_section").set_value("candidates").run()
    pick = at.selectbox(key="cand_pick")
    agreed, new = (next(v for v in pick.options if v.endswith(name)) for name in ("svc-agreed", "svc-new"))
    agreed_id, new_id = (int(label.split(" · ")[0][1:]) for label in (agreed, new))
    pick.set_value(agreed_id).run()
    assert at.selectbox(key=f"cand_to_{agreed_id}_plan_agreed").value == "dismissed"
    at.selectbox(key="cand_pick").set_value(new_id).run()
    no_exceptions(at)
    assert at.selectbox(key=f"cand_to_{new_id}_detected").value == "under_review"
