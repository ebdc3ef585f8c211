"""The browser benchmark's summary (bench/browser.py): per page, median and worst over the repeat
passes of every menu — the first pass after the server started reported apart — and the pages and
views over the target, as the README's figures are read from it."""

from __future__ import annotations

from bench.browser import Result, Visit, rows, table


def _result() -> Result:
    result = Result("demo", "zh-CN", 2, 1.5, {"cpu": "cpu", "cores": 2, "memory_gib": 1.0, "python": "3", "chromium": "c",
                                              "date": "d"}, (1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    result.visits = [
        Visit("a", "usage", "url", 0, 9.0, 0),  # first pass: not in median/worst
        Visit("a", "usage", "url", 1, 1.0, 0), Visit("b", "usage", "url", 1, 3.0, 0), Visit("a", "usage", "url", 2, 2.0, 0),
        Visit("a", "usage", "menu", 1, 0.4, 0), Visit("a", "usage", "menu", 2, 0.6, 1),
        Visit("a", "home", "url", 1, 0.8, 0, shown="approvals"), Visit("a", "home", "menu", 1, 0.3, 0),
    ]
    return result


def test_each_page_gets_median_and_worst_of_the_repeat_passes_and_its_first_visit_apart():
    usage, home = rows(_result())
    assert (usage.page, usage.url_median, usage.url_worst, usage.menu_median, usage.menu_worst) == \
        ("usage", 2.0, 3.0, 0.5, 0.6)
    assert usage.first_worst == 9.0 and usage.worst_by == "b (url)" and usage.errors == 1
    assert home.lands_on == "a on approvals"


def test_the_summary_counts_pages_and_views_over_the_target_and_gives_the_load():
    text = table(_result())
    assert "| usage, 1 with an error | **2.00** | **3.00** | 0.50 | 0.60 | 9.00 | b (url) |" in text
    assert "Pages over 1.5 s: median 1 of 2 (usage); worst 1 of 2 (usage); views over 1.5 s: 2 of 7." in text
    assert "before 1.0/2.0/3.0, after 4.0/5.0/6.0" in text
