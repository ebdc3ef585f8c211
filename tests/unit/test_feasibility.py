"""The feasibility checklist pre-filled for reviewers: GPU fit, storage, network, software, conflict."""

from __future__ import annotations

import pytest

from core.estimation.catalog import load_catalog
from core.i18n import translate
from core.lifecycle import feasibility as feas
from core.lifecycle.feasibility import CudaTable, assess, load_cuda_table, version_tuple
from core.org import load_org
from tests.support.forms import inference_form, training_form


def _items(form, **kw) -> dict[str, feas.CheckItem]:
    items = assess(form, org=load_org(), catalog=load_catalog(), cuda=load_cuda_table(), **kw)
    assert [i.id for i in items] == list(feas.ITEMS)
    return {i.id: i for i in items}


def _status(form, item, **kw) -> str:
    return _items(form, **kw)[item].status


def test_a_sensible_request_is_all_ok_and_every_message_renders_in_both_languages():
    items = _items(training_form(pool="hq-lang", requested_gpus=8, parameters="7B", cuda_version="12.4"))
    assert {i: it.status for i, it in items.items()} == dict.fromkeys(feas.ITEMS, "ok")
    for it in items.values():
        assert translate(it.msg.key, "en", **it.msg.params) and translate(it.msg.key, "zh-CN", **it.msg.params)
        assert translate(f"feasibility.item.{it.id}", "zh-CN")


# ----------------------------------------------------------------- GPU fit


def test_estimate_memory_verdict_fails_the_gpu_fit():
    est = {"gpu": "H800-SXM", "gpus": 8, "fits_in_memory": False, "layout": {"tp": 1}}
    assert _status(training_form(pool="hq-lang", requested_gpus=8), "gpu_fit", estimate=est) == "fail"
    est_ok = {**est, "fits_in_memory": True, "layout": {"tp": 8}}
    assert _status(training_form(pool="hq-lang", requested_gpus=8), "gpu_fit", estimate=est_ok) == "ok"


def test_tensor_parallelism_from_the_estimate_needs_nvlink():
    est = {"gpu": "L40S", "gpus": 8, "fits_in_memory": True, "layout": {"tp": 4}}
    form = training_form(department="js-it", project="P-JS-06", pool="sc-pool", requested_gpus=8)
    item = _items(form, estimate=est)["gpu_fit"]
    assert item.status == "fail" and item.msg.key == "feasibility.gpu_tp_needs_nvlink"


def test_an_estimate_made_for_another_gpu_model_is_a_warning():
    est = {"gpu": "A100-80GB", "gpus": 8, "fits_in_memory": True, "layout": {"tp": 1}}
    assert _status(training_form(pool="hq-lang", requested_gpus=8), "gpu_fit", estimate=est) == "warn"


def test_without_an_estimate_the_parameter_count_decides_compute_or_memory_bound():
    small = _items(training_form(pool="hq-lang", requested_gpus=8, parameters="1B"))["gpu_fit"]
    assert small.msg.key == "feasibility.gpu_fits_compute"
    big = _items(training_form(pool="hq-lang", requested_gpus=64, parameters="70B"))["gpu_fit"]
    assert big.status == "ok" and big.msg.key == "feasibility.gpu_fits_memory"
    short = _items(training_form(pool="hq-lang", requested_gpus=4, parameters="70B"))["gpu_fit"]
    assert short.status == "fail" and short.msg.key == "feasibility.gpu_memory_short"


def test_a_model_too_big_for_one_card_on_a_pcie_gpu_fails_for_lack_of_nvlink():
    form = training_form(department="js-it", project="P-JS-06", pool="hn-pool", requested_gpus=48, parameters="13B")
    item = _items(form)["gpu_fit"]  # T4 16 GB: 26 GB of weights need tensor parallelism over PCIe
    assert item.status == "fail" and item.msg.key == "feasibility.gpu_tp_needs_nvlink"


def test_a_small_inference_model_on_a_training_gpu_is_flagged_as_oversized():
    item = _items(inference_form(pool="hq-lang", parameters="7B"))["gpu_fit"]
    assert item.status == "warn" and item.msg.key == "feasibility.gpu_oversized_for_inference"
    assert _status(inference_form(pool="hq-inf", parameters="7B"), "gpu_fit") == "ok"


def test_no_size_at_all_is_a_warning():
    assert _status(inference_form(parameters=None), "gpu_fit") == "warn"


# ----------------------------------------------------------------- storage


def test_large_training_data_off_a_parallel_file_system_is_a_warning():
    assert _status(training_form(pool="hq-ft", data_size_gb=5000, requested_gpus=8), "storage_fit") == "warn"
    assert _status(training_form(pool="hq-lang", data_size_gb=5000, requested_gpus=8), "storage_fit") == "ok"


def test_multi_node_training_on_local_ssd_is_a_warning():
    item = _items(training_form(pool="hq-ft", requested_gpus=16))["storage_fit"]
    assert item.status == "warn" and item.msg.key == "feasibility.storage_local_multinode"
    assert _status(training_form(pool="hq-ft", requested_gpus=8), "storage_fit") == "ok"


# ----------------------------------------------------------------- network domain


def test_multi_node_training_within_one_pool_is_one_network_domain():
    item = _items(training_form(pool="hq-lang", requested_gpus=32))["network_domain"]
    assert item.status == "ok" and item.msg.params["nodes"] == 4


def test_several_pools_in_different_domains_or_provinces_fail():
    same_domain = training_form(pool="hq-lang", requested_gpus=32, extra_pools=["hq-mm"])
    assert _status(same_domain, "network_domain") == "ok"  # both on hq-beijing-1 (hq-ib-1)
    other_domain = training_form(pool="hq-lang", requested_gpus=32, extra_pools=["hq-sci"])
    assert _items(other_domain)["network_domain"].msg.key == "feasibility.network_several_domains"
    cross = training_form(pool="hq-lang", requested_gpus=32, extra_pools=["js-pool"])
    item = _items(cross)["network_domain"]
    assert item.status == "fail" and item.msg.key == "feasibility.network_cross_province"


# ----------------------------------------------------------------- software


@pytest.mark.parametrize(("pool", "cuda", "status"), [
    ("hq-lang", "12.4", "ok"),      # driver 550 → 12.4
    ("hq-lang", "12.5", "fail"),
    ("hq-ft", "12.2", "ok"),        # driver 535 → 12.2
    ("hq-ft", "12.3", "fail"),
    ("hq-ft", "11.8", "ok"),
])
def test_requested_cuda_must_not_exceed_what_the_cluster_driver_supports(pool, cuda, status):
    assert _status(training_form(pool=pool, cuda_version=cuda), "software") == status


def test_the_lower_of_table_and_cluster_setting_wins():
    table = CudaTable({"550": "12.3"}, "test")  # a stricter table than org.yaml's 12.4
    form = training_form(pool="hq-lang", cuda_version="12.4")
    item = feas.software(form, load_org().pools["hq-lang"], load_catalog().get("H800-SXM"), load_org(), table)
    assert item.status == "fail" and item.msg.params["max_cuda"] == "12.3"


def test_cuda_on_a_non_nvidia_pool_fails_and_no_cuda_is_fine():
    form = training_form(department="js-it", project="P-JS-06", pool="zj-pool", cuda_version="12.1")
    assert _items(form)["software"].msg.key == "feasibility.software_not_nvidia"
    assert _status(inference_form(), "software") == "ok"


def test_cuda_table_cites_nvidia_and_covers_every_cluster_driver():
    table = load_cuda_table()
    assert "nvidia.com" in table.source
    for cluster in load_org().clusters.values():
        assert table.max_cuda(cluster.driver) is not None, cluster.id
    assert version_tuple("12.10") > version_tuple("12.9")


# ----------------------------------------------------------------- conflict


def test_high_priority_share_of_the_pool_warns_and_fails():
    form = training_form(pool="hq-ft", requested_gpus=8)
    assert _status(form, "conflict", high_priority_gpus=10) == "ok"
    assert _status(form, "conflict", high_priority_gpus=48) == "warn"  # half of 96
    urgent = training_form(pool="hq-ft", requested_gpus=8, priority="high")
    assert _status(urgent, "conflict", high_priority_gpus=72) == "fail"  # 80 of 96 > 80 %
