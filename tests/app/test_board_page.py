"""AppTest: the board shows published reports to everyone, executives included; its headline tiles
show whole GPUs, money in 万元 and the change against last month (and a target where data/ sets one)."""

from __future__ import annotations

import re

import yaml

from core.reports import export, figures
from core.reports import service as reports
from tests.support import app_scenarios as scenarios
from tests.support import clock
from tests.support.app_run import lead, no_exceptions, open_page, text
from tests.support.data_copy import data_copy, write_data  # noqa: F401 - data_copy is a fixture


def test_the_board_says_nothing_is_published_yet():
    at = open_page("app_pages/board.py", persona="wang.qiang")
    no_exceptions(at)
    assert any(text("board.empty") in i.value for i in at.info)


def test_an_executive_reads_the_published_report_but_not_a_draft(app_ctx):
    ctx = app_ctx
    ops = scenarios.persona("li.na")
    published, drafted = clock.month(-2), clock.month(-1)
    draft = reports.build_draft(sessions=ctx.sessions, actor=ops, month=published, scope="HQ")
    reports.publish(sessions=ctx.sessions, actor=ops, report_id=draft["id"])
    reports.build_draft(sessions=ctx.sessions, actor=ops, month=drafted, scope="HQ")
    at = open_page("app_pages/board.py", persona="wang.qiang", lang="zh-CN")
    no_exceptions(at)
    assert at.selectbox[0].options == [published]
    assert any(text("reports.metric.gpus_total", "zh-CN") in m.label for m in at.metric)


def test_the_board_shows_pool_kinds_and_the_water_level_definition_in_the_readers_language(app_ctx):
    ctx = app_ctx
    ops = scenarios.persona("li.na")
    draft = reports.build_draft(sessions=ctx.sessions, actor=ops, month=clock.month(-2), scope="HQ")
    reports.publish(sessions=ctx.sessions, actor=ops, report_id=draft["id"])
    for lang in ("zh-CN", "en"):
        kind, definition = text("pool_kind.training_language", lang), lead("capacity.board_water_definition", lang)
        at = open_page("app_pages/board.py", persona="wang.qiang", lang=lang)
        no_exceptions(at)
        titles = [e.label for e in at.expander]
        water = at.expander[titles.index(text("reports.table.water_by_pool", lang))].dataframe[0].value
        cells = set(water.astype(str).values.ravel())
        assert kind in cells and "training_language" not in cells and "strategic_reserve" not in cells
        assert any(definition in c.value for c in at.caption)


def test_reruns_reuse_the_cached_reports_and_a_new_publication_shows_at_once(app_ctx, monkeypatch, tmp_path):
    scenarios.one_long_cache_slot(tmp_path, monkeypatch)
    ctx = app_ctx
    ops = scenarios.persona("li.na")
    first, second = clock.month(-2), clock.month(-1)
    draft = reports.build_draft(sessions=ctx.sessions, actor=ops, month=first, scope="HQ")
    reports.publish(sessions=ctx.sessions, actor=ops, report_id=draft["id"])
    calls = []
    real = reports.list_reports
    monkeypatch.setattr(reports, "list_reports", lambda **kw: calls.append(1) or real(**kw))
    at = open_page("app_pages/board.py", persona="wang.qiang")
    no_exceptions(at)
    assert at.selectbox[0].options == [first]
    at.run()
    at.run()
    assert len(calls) == 1  # the reruns read nothing again
    later = reports.build_draft(sessions=ctx.sessions, actor=ops, month=second, scope="HQ")
    reports.publish(sessions=ctx.sessions, actor=ops, report_id=later["id"])
    at.run()  # publishing wrote an audit event: the next rerun reads again
    no_exceptions(at)
    assert len(calls) == 2 and at.selectbox[0].options == [second, first]


def test_every_reader_checks_access_but_the_snapshot_is_read_once(app_ctx, monkeypatch, tmp_path):
    """The 15 MB snapshot of a 100,800-GPU fleet is one shared object: two readers and their reruns
    read it from the database once, while each reader's right to read the report is checked."""
    scenarios.one_long_cache_slot(tmp_path, monkeypatch)
    ctx = app_ctx
    ops = scenarios.persona("li.na")
    draft = reports.build_draft(sessions=ctx.sessions, actor=ops, month=clock.month(-2), scope="HQ")
    reports.publish(sessions=ctx.sessions, actor=ops, report_id=draft["id"])
    reads = []
    real = reports.get_report
    monkeypatch.setattr(reports, "get_report", lambda **kw: reads.append((kw["actor"].id, kw.get("with_snapshot", True)))
                        or real(**kw))
    for persona in ("wang.qiang", "zhang.wei"):
        at = open_page("app_pages/board.py", persona=persona, lang="zh-CN")
        no_exceptions(at)
        at.run()
        assert any(text("reports.metric.gpus_total", "zh-CN") in m.label for m in at.metric)
    assert [r for r in reads if r[1]] == [("wang.qiang", True)]  # the snapshot: once
    assert sorted(r[0] for r in reads if not r[1]) == ["wang.qiang", "zhang.wei"]  # each reader checked


def _published_snapshot(ctx) -> dict:
    view = next(r for r in reports.list_reports(sessions=ctx.sessions, actor=scenarios.persona("wang.qiang"))
                if r["status"] == "published")
    return reports.get_report(sessions=ctx.sessions, actor=scenarios.persona("wang.qiang"), report_id=view["id"])["snapshot"]


def _tile(at, key: str, lang: str):
    """The st.metric whose label is the tile ``key``'s (monthly-mean labels for the water level)."""
    labels = {text(f"board.tile.{key}", lang), text(f"board.tile.{key}_mean", lang)} if key.startswith("gpus_a") \
        else {text(f"board.tile.{key}", lang)}
    return next(m for m in at.metric if m.label in labels)


def test_the_tiles_show_whole_gpus_money_in_wan_yuan_and_the_change_against_last_month(demo_database):
    from core.context import build

    snap = _published_snapshot(build(demo_database))
    water = snap["water_level"]
    assert water["allocated"] != round(water["allocated"])  # a monthly mean: the raw figure has decimals
    at = open_page("app_pages/board.py", persona="wang.qiang", lang="zh-CN")
    no_exceptions(at)
    assert len(at.metric) == 9
    allocated, available = _tile(at, "gpus_allocated", "zh-CN"), _tile(at, "gpus_available", "zh-CN")
    assert allocated.value == f"{round(water['allocated']):,}" and available.value == f"{round(water['available']):,}"
    assert not any(re.search(r"\d\.\d{2}$", m.value) for m in at.metric if "%" not in m.value and "元" not in m.value)
    cost = _tile(at, "cost", "zh-CN")
    assert cost.value == figures.money(snap["economics"]["cost"], "zh-CN") and cost.value.endswith(" 万元")
    # last month's grants are in the snapshot: the change, coloured so that fewer idle GPUs read as good
    change = water["allocated"] - water["previous_month"]["allocated"]
    assert allocated.delta == figures.signed_gpus(change) and available.delta == figures.signed_gpus(-change)
    assert allocated.proto.delta_description == text("board.delta.vs_last_month", "zh-CN")
    if available.delta not in (None, figures.ZERO):
        falls = available.delta.startswith("-")
        assert (available.proto.color == available.proto.GREEN) == falls  # inverse: fewer idle GPUs is good
    # the demo's history starts last month: the figures from the metrics say why they show no change
    assert snap["trends"]["comparison"]["previous_month"]["status"] == "no_data"
    assert _tile(at, "util_allocated", "zh-CN").delta == ""
    assert any(text("board.delta.no_data", "zh-CN", month=clock.month(-2)) in c.value for c in at.caption)


def test_a_target_set_in_data_is_shown_on_its_tile(demo_database, data_copy):  # noqa: F811 - the fixture
    path = data_copy / "board_targets.yaml"
    targets = yaml.safe_load(path.read_text(encoding="utf-8"))
    targets["util_allocated"].update(value=0.99, source="test: a target nobody reaches")
    write_data(path, yaml.safe_dump(targets, allow_unicode=True))
    at = open_page("app_pages/board.py", persona="wang.qiang", lang="zh-CN")
    no_exceptions(at)
    # the caption's text is Markdown-escaped (core.text.plain): compared without the backslashes
    shown = [c.value for c in at.caption if "目标 ≥ 99.0%" in c.value.replace("\\", "")]
    assert shown and shown[0].startswith(":red[")


def test_each_list_says_what_it_ranks_and_shows_that_figure(demo_database):
    at = open_page("app_pages/board.py", persona="wang.qiang", lang="en")
    no_exceptions(at)
    title = text("reports.list.best_cost_per_useful_hour", "en")
    blocks = [m.value for m in at.markdown]
    start = next(i for i, v in enumerate(blocks) if title in v)
    entries = [v for v in blocks[start + 1:start + 6] if re.match(r"\d\\?\. ", v)]
    assert entries and all("CNY" in v and "%" not in v for v in entries)
    assert any(text("board.ranked_by.asc", "en", figure=text("board.figure.cost_per_useful_gpu_hour", "en")) in c.value
               for c in at.caption)


def test_a_long_table_shows_its_largest_projects_and_says_how_many_it_has(demo_database, data_copy):  # noqa: F811
    """A page does not send thousands of rows to the browser (17,755 projects at 100,800 GPUs): the
    projects table shows the ``page_table_rows`` with the most allocated GPU-hours and says how many
    there are; the CSV download keeps every row."""
    from core.context import build

    snap = _published_snapshot(build(demo_database))
    entities = sorted(snap["entities"], key=lambda e: -(e["gpu_hours_allocated"] or 0.0))
    assert len(entities) > 3
    path = data_copy / "report_settings.yaml"
    settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    write_data(path, yaml.safe_dump({**settings, "page_table_rows": 3}, allow_unicode=True))
    for lang in ("zh-CN", "en"):
        at = open_page("app_pages/board.py", persona="wang.qiang", lang=lang)
        no_exceptions(at)
        titles = [e.label for e in at.expander]
        projects = at.expander[titles.index(text("reports.table.projects", lang))]
        shown = projects.dataframe[0].value
        assert len(shown) == 3
        names = [e.get("name_en" if lang == "en" else "name_zh") or e["id"] for e in entities[:3]]
        assert list(shown.iloc[:, 0]) == names
        note = text("board.table_cut.projects", lang, shown="3", total=f"{len(entities):,}")
        assert [c.value for c in projects.caption] == [note]
    csv = export.to_csv(snap, "en", "projects").decode("utf-8-sig")
    assert len(csv.strip().splitlines()) == len(entities) + 1  # the header and every project
