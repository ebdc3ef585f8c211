"""The detectors of tests/support/visible_text.py: what they find, and what they leave alone."""

from __future__ import annotations

import pytest

from tests.support.visible_text import english_builtins, leaks, raw_identifiers, raw_values, user_ids

# --------------------------------------------------------------------------- english_builtins


@pytest.mark.parametrize(("text", "found"), [
    ("资源池\nChoose an option", ["Choose an option"]),
    ("项目 Choose options", ["Choose options"]),
    ("No options to select.", ["No options to select."]),
    ("Select all\n资源", ["Select all"]),
    ("开始\n首页\nView 10 more", ["View 10 more"]),
    ("View less", ["View less"]),
    ("Upload\n200MB per file • JSON, CSV", ["Upload", "200MB per file • JSON, CSV"]),
    ("Drag and drop files here\nLimit 200MB per file", ["Drag and drop files here", "Limit 200MB per file"]),
    ("Browse files", ["Browse files"]),
    ("Press Enter to apply", ["Press Enter to apply"]),
    ("Press Ctrl+Enter to submit form", ["Press Ctrl+Enter to submit form"]),
    ("No results", ["No results"]),
    ("Date range Select... Past Week Past 3 Months", ["Date range", "Select...", "Past Week", "Past 3 Months"]),
    # Vega's default time axis: "Sat 07", "Nov 15", "December", "03 AM"
    ("时间（UTC）\nSat 07\nNov 15\nDecember\n03 AM\n12 PM", ["Sat", "Nov", "December", "03 AM", "12 PM"]),
    ("上传Upload文件", ["Upload"]),  # next to Chinese characters, still the button's text
])
def test_english_builtins_finds_streamlits_own_texts(text, found):
    assert english_builtins(text) == found


@pytest.mark.parametrize("text", [
    "请选择\n暂无可选项\n上传文件\n每个文件不超过 200 MB · JSON、CSV",
    "GPU 型号 A100-80GB · H800-SXM · Ascend-910B",
    "Monitor Decoder Mayday Satellite Uploads",  # words that contain a month, a day or "Upload"
    "uploaded 3 files; upload them again",  # lower case: a sentence, not the button
    "CR-2026-000020 · hq-ft · 8 GPU",
    "2026-12-07 14:00 UTC",
    "",
])
def test_english_builtins_leaves_other_text_alone(text):
    assert english_builtins(text) == []


def test_english_builtins_reports_each_text_once_in_order():
    assert english_builtins("Choose an option\nSelect all\nChoose an option") == ["Choose an option", "Select all"]


# --------------------------------------------------------------------------- raw_identifiers


@pytest.mark.parametrize(("text", "found"), [
    ("时延指标 p99_ms、ttft_p99_ms", ["p99_ms", "ttft_p99_ms"]),
    ("审批路径（standard_ops）：超出标准额度", ["standard_ops"]),
    ("[no_estimate_for_large_request] 大额申请未附测算", ["[no_estimate_for_large_request]"]),
    ("来源：container_cpu_usage_seconds_total 与 kube_pod_container_resource_requests",
     ["container_cpu_usage_seconds_total", "kube_pod_container_resource_requests"]),
    ("设置 COMPUTELOOP_CLUSTER_BACKEND=live", ["COMPUTELOOP_CLUSTER_BACKEND"]),
    ("DCGM_FI_DEV_GPU_UTIL", ["DCGM_FI_DEV_GPU_UTIL"]),
    ("节点清单 /var/lib/computeloop/samples 中", ["/var/lib/computeloop/samples"]),
    ("权重见 data/queue_policy.yaml", ["data/queue_policy.yaml"]),
    ("status.in_review", ["status.in_review"]),  # a catalog key shown because its text is missing
    ("reclaim.cand.review", ["reclaim.cand.review"]),
    ("键p99_ms紧挨汉字", ["p99_ms"]),
])
def test_raw_identifiers_finds_programmers_names(text, found):
    assert raw_identifiers(text) == found


@pytest.mark.parametrize("text", [
    "联系 zhang.wei@example.com 或 li_na@example.com",  # e-mail addresses
    "见 https://docs.nvidia.com/datacenter/dcgm/latest/dcgm_api/index.html",  # URLs
    "命名空间 cl-cr-2026-000019-p-llm-01 · 资源池 hq-ft · 集群 js-nanjing",  # hyphenated names
    "A100-80GB H800-SXM Llama-2-7B bf16 FP8 TP PP ZeRO",
    "CUDA 12.2 · Python 3.11 · torch==2.3.1",
    "推理算力资源使用情况表 · 2026-11",
    "GPU·h/天 · 元/GPU·h · 1/2",
    "example.com",
    "",
])
def test_raw_identifiers_leaves_names_people_use_alone(text):
    assert raw_identifiers(text) == []


# --------------------------------------------------------------------------- raw_values and user_ids


@pytest.mark.parametrize(("text", "found"), [
    ("计划：None", ["None"]),
    ("模型地址 null · 数据量 NaN", ["null", "NaN"]),
    ("高可用 True 灰度 False", ["True", "False"]),
    ("<NA> NaT", ["<NA>", "NaT"]),
])
def test_raw_values_finds_printed_empty_values(text, found):
    assert raw_values(text) == found


@pytest.mark.parametrize("text", ["Nonetheless", "nullable", "Nancy", "TrueNAS", "无", "-", "否", "是"])
def test_raw_values_leaves_words_alone(text):
    assert raw_values(text) == []


def test_user_ids_finds_login_ids_but_not_e_mail_addresses():
    ids = ["zhang.wei", "li.na", "wu.hao"]
    assert user_ids("申请人 zhang.wei，审批人 li.na", ids) == ["zhang.wei", "li.na"]
    assert user_ids("联系 zhang.wei@example.com；张伟", ids) == []
    assert user_ids("li.nana wu.haoran", ids) == []  # a longer id is not the persona's
    assert user_ids("认领人：wu.hao。", ids) == ["wu.hao"]


def test_leaks_runs_english_builtins_only_on_chinese_pages():
    text = "Choose an option · p99_ms · None · zhang.wei"
    assert leaks(text, "zh-CN", ["zhang.wei"]) == {
        "english_builtins": ["Choose an option"], "raw_identifiers": ["p99_ms"], "raw_values": ["None"],
        "user_ids": ["zhang.wei"]}
    assert leaks(text, "en", ["zhang.wei"]) == {"raw_identifiers": ["p99_ms"], "raw_values": ["None"],
                                                 "user_ids": ["zhang.wei"]}
    assert leaks("一切正常", "zh-CN") == {}
