"""AppTest: the queue page (队列与调整) — queue table with blocked reasons, policy text, simulations."""

from __future__ import annotations

from core.lifecycle import services as lifecycle
from tests.support import app_scenarios as scenarios
from tests.support.app_run import no_exceptions, open_page, shows, text


def _policy_figures() -> dict:
    """The figures the policy text states, from data/queue_policy.yaml: the weights, the aging rate
    and cap, and the hours after which a lower priority overtakes a higher one."""
    from core.datafiles import load_yaml

    raw = load_yaml("queue_policy.yaml")
    w = {p: float(v) for p, v in raw["weights"].items()}
    rate = float(raw["aging_rate_per_hour"])
    return {**w, "rate": rate, "cap": float(raw["max_aging_hours"]),
            "normal_high": (w["high"] - w["normal"]) / rate, "low_normal": (w["normal"] - w["low"]) / rate}


def test_an_empty_queue_says_so_and_explains_the_policy():
    at = open_page("app_pages/queue.py", persona="li.na")
    no_exceptions(at)
    assert shows(at.success, "adjq.empty")
    assert shows(at.info, "adjq.policy", **_policy_figures()), [i.value for i in at.info]  # the figures of the data file


def test_a_queued_request_shows_its_position_and_blocked_reason_in_chinese(app_ctx):
    ctx = app_ctx
    view = lifecycle.submit(sessions=ctx.sessions, actor=scenarios.persona("zhang.wei"), form=scenarios.form(200),
                            queue_if_short=True)
    assert view["status"] == "queued"
    zh = "zh-CN"
    at = open_page("app_pages/queue.py", persona="li.na", lang=zh)
    no_exceptions(at)
    table = at.dataframe[0].value
    assert view["number"] in table.to_string()
    assert text("adjq.col.position", zh) in table.columns and text("adjq.col.blocked", zh) in table.columns
    assert set(table[text("adjq.col.blocked", zh)]) == {text("adjq.blocked.no_release", zh)}


def test_the_defragmentation_tab_says_that_the_portal_only_records_the_plan():
    at = open_page("app_pages/queue.py", persona="zhao.min")
    no_exceptions(at)
    assert shows(at.caption, "adjq.defrag.note")
    at.selectbox(key="adjq_pool").set_value("hq-sci").run()
    no_exceptions(at)


def test_reruns_reuse_the_cached_queue_and_a_change_shows_at_once(app_ctx, monkeypatch, tmp_path):
    from core.adjust import services as adjust

    scenarios.one_long_cache_slot(tmp_path, monkeypatch)
    ctx = app_ctx
    calls = []
    real = adjust.queue
    monkeypatch.setattr(adjust, "queue", lambda **kw: calls.append(1) or real(**kw))
    at = open_page("app_pages/queue.py", persona="li.na")
    no_exceptions(at)
    assert shows(at.success, "adjq.empty")
    at.run()
    at.run()
    assert len(calls) == 1  # the reruns read nothing again
    view = lifecycle.submit(sessions=ctx.sessions, actor=scenarios.persona("zhang.wei"), form=scenarios.form(200),
                            queue_if_short=True)
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
