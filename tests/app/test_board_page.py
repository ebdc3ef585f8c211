"""AppTest: the board shows published reports to everyone, executives included."""

from __future__ import annotations

from core.identity import load_personas
from core.reports import service as reports
from tests.app.conftest import no_exceptions, open_page


def test_the_board_says_nothing_is_published_yet():
    at = open_page("app_pages/board.py", persona="wang.qiang")
    no_exceptions(at)
    assert any("No report has been published" in i.value for i in at.info)


def test_an_executive_reads_the_published_report_but_not_a_draft(app_ctx):
    ctx = app_ctx
    ops = next(p for p in load_personas() if p.id == "li.na")
    draft = reports.build_draft(sessions=ctx.sessions, actor=ops, month="2026-03", scope="HQ")
    reports.publish(sessions=ctx.sessions, actor=ops, report_id=draft["id"])
    reports.build_draft(sessions=ctx.sessions, actor=ops, month="2026-04", scope="HQ")
    at = open_page("app_pages/board.py", persona="wang.qiang", lang="zh-CN")
    no_exceptions(at)
    assert at.selectbox[0].options == ["2026-03"]
    assert any("GPU 总量" in m.label for m in at.metric)


def test_the_board_shows_pool_kinds_and_the_water_level_definition_in_the_readers_language(app_ctx):
    ctx = app_ctx
    ops = next(p for p in load_personas() if p.id == "li.na")
    draft = reports.build_draft(sessions=ctx.sessions, actor=ops, month="2026-03", scope="HQ")
    reports.publish(sessions=ctx.sessions, actor=ops, report_id=draft["id"])
    for lang, kind, definition in (("zh-CN", "L1 语义大模型", "本月水位取自 GPU 监控数据"),
                                   ("en", "L1 language models", "Water level of the month, from the GPU metrics")):
        at = open_page("app_pages/board.py", persona="wang.qiang", lang=lang)
        no_exceptions(at)
        titles = [e.label for e in at.expander]
        water = at.expander[titles.index("资源水位（按资源池）" if lang == "zh-CN" else "Water level by pool")].dataframe[0].value
        cells = set(water.astype(str).values.ravel())
        assert kind in cells and "training_language" not in cells and "strategic_reserve" not in cells
        assert any(definition in c.value for c in at.caption)


def one_long_cache_slot(tmp_path, monkeypatch) -> None:
    """Cache slots of 10^9 s, so that no slot boundary falls between the reruns of a test: only a
    change can make a page read again."""
    import shutil

    from core.config import DATA_DIR

    shutil.copytree(DATA_DIR, tmp_path / "data")
    (tmp_path / "data" / "page_cache.yaml").write_text("queue_ttl_s: 1000000000\nboard_ttl_s: 1000000000\n",
                                                       encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(tmp_path / "data"))


def test_reruns_reuse_the_cached_reports_and_a_new_publication_shows_at_once(app_ctx, monkeypatch, tmp_path):
    one_long_cache_slot(tmp_path, monkeypatch)
    ctx = app_ctx
    ops = next(p for p in load_personas() if p.id == "li.na")
    draft = reports.build_draft(sessions=ctx.sessions, actor=ops, month="2026-03", scope="HQ")
    reports.publish(sessions=ctx.sessions, actor=ops, report_id=draft["id"])
    calls = []
    real = reports.list_reports
    monkeypatch.setattr(reports, "list_reports", lambda **kw: calls.append(1) or real(**kw))
    at = open_page("app_pages/board.py", persona="wang.qiang")
    no_exceptions(at)
    assert at.selectbox[0].options == ["2026-03"]
    at.run()
    at.run()
    assert len(calls) == 1  # the reruns read nothing again
    later = reports.build_draft(sessions=ctx.sessions, actor=ops, month="2026-04", scope="HQ")
    reports.publish(sessions=ctx.sessions, actor=ops, report_id=later["id"])
    at.run()  # publishing wrote an audit event: the next rerun reads again
    no_exceptions(at)
    assert len(calls) == 2 and at.selectbox[0].options == ["2026-04", "2026-03"]
