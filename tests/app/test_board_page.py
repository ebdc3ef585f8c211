"""AppTest: the board shows published reports to everyone, executives included."""

from __future__ import annotations

from core.reports import service as reports
from tests.support import app_scenarios as scenarios
from tests.support import clock
from tests.support.app_run import lead, no_exceptions, open_page, text


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
        kind, definition = text("pool_kind.training_language", lang), lead("reportfix.water_definition", lang)
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
