"""Hardware catalog (core/estimation/catalog.py, data/gpus.yaml): contents, lookup, and broken files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.errors import InputError
from core.estimation.catalog import load_catalog
from tests.support.data_copy import data_copy  # noqa: F401 - a fixture
from tests.support.data_copy import write_data as _write

DATA = Path(__file__).resolve().parents[2] / "data"
RAW = yaml.safe_load((DATA / "gpus.yaml").read_text(encoding="utf-8"))

# The 16 accelerators the estimator must know, as people name them -> the catalog id.
REQUIRED = {
    "V100": "V100-SXM2-32GB",
    "A100-40GB": "A100-40GB",
    "A100-80GB": "A100-80GB",
    "A800": "A800-80GB",
    "H100-SXM": "H100-SXM",
    "H100-PCIe": "H100-PCIe",
    "H800": "H800-SXM",
    "H20": "H20",
    "H200": "H200-SXM",
    "B200": "B200",
    "L40S": "L40S",
    "L20": "L20",
    "A30": "A30",
    "A10": "A10",
    "T4": "T4",
    "Ascend 910B": "Ascend-910B",
}


# -- contents -----------------------------------------------------------------------------------


def test_catalog_holds_exactly_the_16_required_gpus():
    catalog = load_catalog()
    assert len(catalog.gpus) == 16
    assert sorted(catalog.ids()) == sorted(REQUIRED.values())


def test_catalog_ids_are_in_file_order():
    assert load_catalog().ids() == [entry["id"] for entry in RAW["gpus"]]


@pytest.mark.parametrize("name,expected_id", sorted(REQUIRED.items()))
def test_every_required_gpu_is_found_by_its_common_name(name, expected_id):
    assert load_catalog().get(name).id == expected_id


@pytest.mark.parametrize("gpu_id", sorted(REQUIRED.values()))
def test_every_gpu_has_a_source_a_placeholder_price_and_positive_figures(gpu_id):
    gpu = load_catalog().get(gpu_id)
    assert isinstance(gpu.source, str) and len(gpu.source.strip()) > 20
    assert gpu.price_is_placeholder is True
    for name in ("fp16_tflops", "memory_gb", "memory_bandwidth_gbps", "interconnect_gbps", "tdp_w",
                 "price_cny_per_gpu_hour"):
        value = getattr(gpu, name)
        assert isinstance(value, (int, float)) and value > 0, name
    for name in ("bf16_tflops", "fp8_tflops"):
        value = getattr(gpu, name)
        assert value is None or value > 0, name


@pytest.mark.parametrize("gpu_id", sorted(REQUIRED.values()))
def test_catalog_figures_match_the_yaml_entry(gpu_id):
    raw = next(e for e in RAW["gpus"] if e["id"] == gpu_id)
    gpu = load_catalog().get(gpu_id)
    for key in ("bf16_tflops", "fp16_tflops", "fp8_tflops", "memory_gb", "tdp_w", "price_cny_per_gpu_hour"):
        assert getattr(gpu, key) == raw[key], key


# -- lookup -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,expected_id", [
    ("a100", "A100-80GB"),
    ("A100", "A100-80GB"),
    ("A100 80GB", "A100-80GB"),
    ("a100-80gb", "A100-80GB"),
    ("A100_80GB", "A100-80GB"),
    ("  a100-80GB  ", "A100-80GB"),
    ("a100-40g", "A100-40GB"),
    ("h100", "H100-SXM"),
    ("H100", "H100-SXM"),
    ("h100 pcie", "H100-PCIe"),
    ("910b", "Ascend-910B"),
    ("ASCEND 910B", "Ascend-910B"),
    ("a10", "A10"),  # must not be swallowed by A100
    ("l20", "L20"),
    ("tesla-t4", "T4"),
    ("v100", "V100-SXM2-32GB"),
])
def test_aliases_resolve_case_insensitively_ignoring_spaces_and_dashes(name, expected_id):
    assert load_catalog().get(name).id == expected_id


@pytest.mark.parametrize("name", ["A9000", "", "h100x", "rtx4090"])
def test_unknown_gpu_raises_input_error_on_field_gpu(name):
    with pytest.raises(InputError) as info:
        load_catalog().get(name)
    assert info.value.field == "gpu"
    assert info.value.key == "error.unknown_gpu"
    # the message lists what is known, so a person can pick a valid id
    assert "A100-80GB" in str(info.value) and "Ascend-910B" in str(info.value)


@pytest.mark.parametrize("gpu_id", ["V100-SXM2-32GB", "T4"])
def test_volta_and_turing_have_no_bf16_peak(gpu_id):
    gpu = load_catalog().get(gpu_id)
    assert gpu.peak_tflops("bf16") is None
    assert gpu.peak_tflops("fp16") > 0
    assert gpu.peak_tflops("fp8") is None


def test_peak_tflops_returns_the_dense_figure_per_precision():
    h100 = load_catalog().get("H100-SXM")
    # H100 SXM dense: 989 BF16/FP16, 1979 FP8 (half the datasheet's sparse 1979 / 3958)
    assert h100.peak_tflops("bf16") == 989
    assert h100.peak_tflops("fp16") == 989
    assert h100.peak_tflops("fp8") == 1979
    assert load_catalog().get("A100-80GB").peak_tflops("fp8") is None


@pytest.mark.parametrize("gpu_id,fast", [
    ("A100-80GB", True), ("H100-SXM", True), ("A30", True), ("Ascend-910B", True),
    ("L40S", False), ("L20", False), ("A10", False), ("T4", False),
])
def test_fast_interconnect_means_at_least_200_gb_per_s(gpu_id, fast):
    assert load_catalog().get(gpu_id).has_fast_interconnect is fast


def test_as_dict_is_plain_and_keeps_aliases_as_list():
    d = load_catalog().get("A100-80GB").as_dict()
    assert d["id"] == "A100-80GB"
    assert isinstance(d["aliases"], list) and "a100" in d["aliases"]


# -- broken files -------------------------------------------------------------------------------


def test_yaml_syntax_error_names_the_file_and_the_line(data_copy):
    # line 4 is indented by 3 spaces inside a 4-space mapping: a YAML syntax error on line 4
    _write(data_copy / "gpus.yaml", "gpus:\n  - id: X\n    vendor: NVIDIA\n   family: volta\n")
    with pytest.raises(InputError) as info:
        load_catalog()
    assert info.value.key == "error.data_file_invalid"
    assert info.value.field.endswith("gpus.yaml")
    assert str(data_copy) in info.value.field
    assert info.value.params["line"] == 4
    assert "Line 4" in str(info.value)


def test_entry_with_non_positive_figure_names_the_file_and_entry(data_copy):
    text = (DATA / "gpus.yaml").read_text(encoding="utf-8").replace("fp16_tflops: 125", "fp16_tflops: -125", 1)
    _write(data_copy / "gpus.yaml", text)
    with pytest.raises(InputError) as info:
        load_catalog()
    assert info.value.key == "error.catalog_entry_invalid"
    assert info.value.field == "gpus.yaml"
    assert info.value.params["entry"] == "V100-SXM2-32GB"
    assert "fp16_tflops" in info.value.params["detail"]


def test_entry_missing_a_required_field_names_the_field(data_copy):
    raw = yaml.safe_load((DATA / "gpus.yaml").read_text(encoding="utf-8"))
    del raw["gpus"][2]["source"]
    _write(data_copy / "gpus.yaml", yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(InputError) as info:
        load_catalog()
    assert info.value.field == "gpus.yaml"
    assert info.value.params["entry"] == RAW["gpus"][2]["id"]
    assert "source" in info.value.params["detail"]


def test_duplicate_ids_are_rejected(data_copy):
    raw = yaml.safe_load((DATA / "gpus.yaml").read_text(encoding="utf-8"))
    raw["gpus"].append(dict(raw["gpus"][0], aliases=[]))
    _write(data_copy / "gpus.yaml", yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(InputError) as info:
        load_catalog()
    assert info.value.field == "gpus.yaml"
    assert "duplicate" in info.value.params["detail"]


def test_missing_catalog_file_names_the_path(data_copy):
    (data_copy / "gpus.yaml").unlink()
    with pytest.raises(InputError) as info:
        load_catalog()
    assert info.value.key == "error.data_file_missing"
    assert info.value.field.endswith("gpus.yaml")


def test_edited_catalog_file_is_reloaded(data_copy):
    assert load_catalog().get("T4").price_cny_per_gpu_hour == 2.0
    text = (DATA / "gpus.yaml").read_text(encoding="utf-8").replace(
        "price_cny_per_gpu_hour: 2.0", "price_cny_per_gpu_hour: 2.5", 1)
    _write(data_copy / "gpus.yaml", text)
    assert load_catalog().get("T4").price_cny_per_gpu_hour == 2.5


def test_entry_without_fp8_key_raises_input_error_not_type_error(data_copy):
    text = (DATA / "gpus.yaml").read_text(encoding="utf-8").replace("    fp8_tflops: null\n", "", 1)
    _write(data_copy / "gpus.yaml", text)
    with pytest.raises(InputError) as info:
        load_catalog()
    assert info.value.field == "gpus.yaml"


@pytest.mark.parametrize("text", ["- a\n- b\n", "gpus:\n  - just-a-string\n"])
def test_catalog_of_the_wrong_shape_raises_input_error(data_copy, text):
    _write(data_copy / "gpus.yaml", text)
    with pytest.raises(InputError) as info:
        load_catalog()
    assert "gpus.yaml" in info.value.field


@pytest.mark.parametrize("old,new", [
    ("bf16_tflops: 312", "bf16_tflops: -312"),
    ("fp8_tflops: 1979", "fp8_tflops: -1979"),
    ("price_cny_per_gpu_hour: 6.0", "price_cny_per_gpu_hour: -6.0"),
])
def test_negative_optional_figure_or_price_is_rejected(data_copy, old, new):
    text = (DATA / "gpus.yaml").read_text(encoding="utf-8")
    assert old in text
    _write(data_copy / "gpus.yaml", text.replace(old, new, 1))
    with pytest.raises(InputError) as info:
        load_catalog()
    assert info.value.field == "gpus.yaml"
