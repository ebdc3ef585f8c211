"""AppTest: the home page says which stages exist and which are not built yet."""

from tests.support.app_run import no_exceptions, open_page, text


def test_home_lists_the_five_stages_and_marks_unbuilt_ones():
    at = open_page("app_pages/home.py")
    no_exceptions(at)
    shown = " ".join(m.value for m in at.markdown)
    assert shown.count(text("home.status.planned")) == 0 and shown.count(text("home.status.partial")) == 0
    assert shown.count(text("home.status.available")) == 5
    assert text("home.stage.estimate.name") in shown


def test_home_in_chinese():
    at = open_page("app_pages/home.py", lang="zh-CN")
    no_exceptions(at)
    shown = " ".join(m.value for m in at.markdown)
    status = {s: "— " + text(f"home.status.{s}", "zh-CN") for s in ("planned", "partial", "available")}
    assert shown.count(status["planned"]) == 0 and shown.count(status["partial"]) == 0
    assert shown.count(status["available"]) == 5
