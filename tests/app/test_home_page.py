"""AppTest: the home page says which stages exist and which are not built yet."""

from tests.app.conftest import no_exceptions, open_page


def test_home_lists_the_five_stages_and_marks_unbuilt_ones():
    at = open_page("app_pages/home.py")
    no_exceptions(at)
    text = " ".join(m.value for m in at.markdown)
    assert text.count("not built yet") == 0 and text.count("partly built") == 0 and text.count("available") == 5
    assert "1. Intake and estimation" in text


def test_home_in_chinese():
    at = open_page("app_pages/home.py", lang="zh-CN")
    no_exceptions(at)
    text = " ".join(m.value for m in at.markdown)
    assert text.count("— 尚未建设") == 0 and text.count("— 部分建设") == 0 and text.count("— 已上线") == 5
