"""AppTest: the queue page (队列与调整) — queue table with blocked reasons, policy text, simulations."""

from __future__ import annotations

from core.identity import load_personas
from core.lifecycle import services as lifecycle
from tests.app.conftest import no_exceptions, open_page
from tests.app.test_allocation_pages import _form


def test_an_empty_queue_says_so_and_explains_the_policy():
    at = open_page("app_pages/queue.py", persona="li.na")
    no_exceptions(at)
    assert any("No request is waiting" in s.value for s in at.success)
    assert any("effective priority" in i.value.lower() and "20" in i.value for i in at.info)


def test_a_queued_request_shows_its_position_and_blocked_reason_in_chinese(app_ctx):
    ctx = app_ctx
    people = {p.id: p for p in load_personas()}
    view = lifecycle.submit(sessions=ctx.sessions, actor=people["zhang.wei"], form=_form(200), queue_if_short=True)
    assert view["status"] == "queued"
    at = open_page("app_pages/queue.py", persona="li.na", lang="zh-CN")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert view["number"] in table.to_string()
    assert "排位" in table.columns and "受阻原因" in table.columns
    assert "无预期释放" in table.to_string()


def test_the_defragmentation_tab_says_that_the_portal_only_records_the_plan():
    at = open_page("app_pages/queue.py", persona="zhao.min")
    no_exceptions(at)
    assert any("cannot be moved from the portal" in c.value for c in at.caption)
    at.selectbox(key="adjq_pool").set_value("hq-sci").run()
    no_exceptions(at)


def test_reruns_reuse_the_cached_queue_and_a_change_shows_at_once(app_ctx, monkeypatch, tmp_path):
    from core.adjust import services as adjust
    from tests.app.test_board_page import one_long_cache_slot

    one_long_cache_slot(tmp_path, monkeypatch)
    ctx = app_ctx
    calls = []
    real = adjust.queue
    monkeypatch.setattr(adjust, "queue", lambda **kw: calls.append(1) or real(**kw))
    at = open_page("app_pages/queue.py", persona="li.na")
    no_exceptions(at)
    assert any("No request is waiting" in s.value for s in at.success)
    at.run()
    at.run()
    assert len(calls) == 1  # the reruns read nothing again
    people = {p.id: p for p in load_personas()}
    view = lifecycle.submit(sessions=ctx.sessions, actor=people["zhang.wei"], form=_form(200), queue_if_short=True)
    assert view["status"] == "queued"
    at.run()  # the submission wrote an audit event: the next rerun reads again and shows it
    no_exceptions(at)
    assert len(calls) == 2
    assert view["number"] in at.dataframe[0].value.to_string()


def test_the_cache_slot_follows_the_data_file(tmp_path, monkeypatch):
    import shutil

    import yaml

    from core.config import DATA_DIR
    from core.db.changes import cache_seconds
    from core.errors import InputError

    raw = yaml.safe_load((DATA_DIR / "page_cache.yaml").read_text(encoding="utf-8"))
    assert cache_seconds("queue") == raw["queue_ttl_s"] and cache_seconds("board") == raw["board_ttl_s"]
    shutil.copytree(DATA_DIR, tmp_path / "data")
    (tmp_path / "data" / "page_cache.yaml").write_text("queue_ttl_s: 0\nboard_ttl_s: 300\n", encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(tmp_path / "data"))
    try:
        cache_seconds("queue")
    except InputError as err:
        assert err.params["field"] == "page_cache.yaml" and err.params["entry"] == "queue_ttl_s"
    else:
        raise AssertionError("a zero time-to-live was accepted")
