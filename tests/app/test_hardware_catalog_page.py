"""AppTest: the hardware catalog page lists every GPU with its source and flags."""

from core.estimation.catalog import load_catalog
from tests.support.app_run import no_exceptions, open_page, text


def test_catalog_lists_every_gpu_with_source_and_marks():
    at = open_page("app_pages/hardware_catalog.py", persona="wang.qiang")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert list(table[text("catalog.col.id")]) == load_catalog().ids()
    assert table[text("catalog.col.source")].str.len().min() > 10
    assert table[text("catalog.col.price")].str.endswith("*").all()
    assert table[text("catalog.col.bf16")].str.contains("†").any()


def test_catalog_in_chinese_has_chinese_headers():
    at = open_page("app_pages/hardware_catalog.py", lang="zh-CN")
    no_exceptions(at)
    assert text("catalog.col.id", "zh-CN") in at.dataframe[0].value.columns
