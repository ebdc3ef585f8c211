"""AppTest: the analysis report on the report builder says it is working while it is built (issue 10:
14-21 s with no sign of life), is built once for its month, scope, drill-down and year — a rerun of
the page shows it again from the cache instead of hiding it or building it again — and goes when
one of them changes."""

from __future__ import annotations

import pytest
import time_machine

from core.reports import analysis
from tests.support import clock
from tests.support.app_run import no_exceptions, open_page, shows, text

MONTH = clock.month(-2)


@pytest.fixture(autouse=True)
def _one_cache_slot():
    """The analysis is cached per time slot (``report_builder_ttl_s``, data/page_cache.yaml) as well
    as per input: the clock stands still in these tests, so that a slot turning over between two runs
    of the page (a rebuild, rightly) cannot pass for a second build of the same slot."""
    with time_machine.travel(clock.now(), tick=False):
        yield


def _analysis_page(monkeypatch, calls: list, *, fail: bool = False):
    real = analysis.analysis_report

    def counted(**kw):
        calls.append(kw["month"])
        if fail:
            raise RuntimeError("the rollups could not be read")
        return real(**kw)

    monkeypatch.setattr(analysis, "analysis_report", counted)
    at = open_page("app_pages/report_builder.py", persona="zhao.min")
    at.text_input(key="rb_month").set_value(MONTH).run()
    at.segmented_control(key="rb_section").set_value("analysis").run()
    at.button(key="rb_analysis_btn").click().run()
    return at


def _annual_shown(at) -> bool:
    return shows(at.markdown, "builder.annual", year=int(MONTH[:4]))


def test_the_analysis_is_built_once_and_stays_until_its_inputs_change(monkeypatch):
    calls: list = []
    at = _analysis_page(monkeypatch, calls)
    no_exceptions(at)
    assert _annual_shown(at) and calls == [MONTH]
    assert not at.get("status")  # the status box goes once the report is there

    at.run()  # any rerun of the page: still shown, not built again
    no_exceptions(at)
    assert _annual_shown(at) and calls == [MONTH]

    at.number_input(key="rb_year").set_value(int(MONTH[:4]) - 1).run()  # another year: not asked for yet
    no_exceptions(at)
    assert not _annual_shown(at) and calls == [MONTH]


def test_the_status_box_is_shown_while_the_analysis_is_built(monkeypatch):
    calls: list = []
    at = _analysis_page(monkeypatch, calls, fail=True)  # stops it while it runs: the status box stays
    assert calls == [MONTH]
    status = [e for e in at.get("status") if e.label == text("waiting.analysis.running")]
    assert status, [e.label for e in at.get("status")]
    assert shows(status[0].caption, "waiting.analysis.steps", year=int(MONTH[:4]))
