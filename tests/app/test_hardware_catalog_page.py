"""AppTest: the hardware catalog page lists every GPU with its source and flags."""

from core.estimation.catalog import load_catalog
from tests.app.conftest import no_exceptions, open_page


def test_catalog_lists_every_gpu_with_source_and_marks():
    at = open_page("app_pages/hardware_catalog.py", persona="wang.qiang")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert list(table["Model"]) == load_catalog().ids()
    assert table["Source"].str.len().min() > 10
    assert table["Price (CNY/GPU·h)"].str.endswith("*").all()
    assert table["BF16 TFLOP/s"].str.contains("†").any()


def test_catalog_in_chinese_has_chinese_headers():
    at = open_page("app_pages/hardware_catalog.py", lang="zh-CN")
    no_exceptions(at)
    assert "型号" in at.dataframe[0].value.columns
