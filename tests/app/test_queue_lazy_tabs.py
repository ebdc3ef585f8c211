"""AppTest: the queue page computes the defragmentation plan only when its tab is open (issue 10:
"heavy work is never inside a hidden tab" — the plan and its node chart cost the page a second in
the browser), and then shows it; the tab's note on what the portal records is there either way."""

from __future__ import annotations

from core.adjust import services as adjust
from tests.support.app_run import no_exceptions, open_page, shows, text


def test_the_defragmentation_plan_runs_only_once_its_tab_is_open(monkeypatch):
    calls = []
    real = adjust.simulate_defragmentation
    monkeypatch.setattr(adjust, "simulate_defragmentation", lambda **kw: calls.append(kw["pool"]) or real(**kw))
    at = open_page("app_pages/queue.py", persona="zhao.min")
    no_exceptions(at)
    assert shows(at.caption, "adjq.defrag.note")
    assert calls == [] and not at.get("vega_lite_chart")

    at.session_state["adjq_sim_tab"] = text("adjq.sim.defrag")  # the tab a click opens
    at.run()
    no_exceptions(at)
    assert calls == [at.selectbox(key="adjq_pool").value]
    assert len(at.get("vega_lite_chart")) == 1  # the nodes before and after
    assert shows(at.caption, "adjq.defrag.note")
