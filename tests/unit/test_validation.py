"""Leave-one-out accuracy of the efficiency model (core/estimation/validation.py, `estimate validate`):
the arithmetic by hand, that a run never estimates itself, the recorded-outcome summary, the cache,
and that the README's figures are the command's output."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.estimation.calibration import RunPair
from core.estimation.catalog import load_catalog
from core.estimation.efficiency import default_efficiency, load_runs
from core.estimation.validation import leave_one_out, markdown_table, outcome_accuracy, published_accuracy

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
POINTS = {p["id"]: p for p in yaml.safe_load((DATA / "efficiency.yaml").read_text(encoding="utf-8"))["points"]}
PEAK = {g["id"]: g for g in yaml.safe_load((DATA / "gpus.yaml").read_text(encoding="utf-8"))["gpus"]}
HFU = float(yaml.safe_load((DATA / "estimation_defaults.yaml").read_text(encoding="utf-8"))
            ["full_recompute_flops_factor"]["value"])


def _cli(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COMPUTELOOP_DATA_DIR"}
    env["COMPUTELOOP_I18N_STRICT"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "core", "estimate", "validate", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _in_process(*argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["estimate", "validate", *argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def command():
    """`python -m core estimate validate --published-only` as a real process (text), and its JSON
    through the same parser in-process."""
    text = _cli("--published-only")
    assert text.returncode == 0, text.stderr
    code, js, err = _in_process("--published-only", "--json")
    assert code == 0, err
    return text.stdout, json.loads(js)


@pytest.fixture(scope="module")
def validation():
    return leave_one_out()


def test_readme_accuracy_table_is_the_commands_output(command):
    text, _ = command
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) >= 4  # header, rule, at least one method, "all"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Accuracy: leave-one-out over the published runs", 1)[1].split("\n## ", 1)[0]
    readme_table = [line for line in section.splitlines() if line.startswith("|")]
    assert readme_table == table, "README table differs from `python -m core estimate validate`: re-run and copy it"


def test_json_and_table_say_the_same(command):
    text, data = command
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    overall = data["overall"]
    assert overall["runs"] == len(data["runs"]) == len(POINTS) - len(data["skipped"])
    assert f"| all | {overall['runs']} | {overall['median_error'] * 100:.1f} % | {overall['worst_factor']:.2f}× |" in rows["all"]
    assert data["outcomes_read"] is False
    # the overall figures recomputed from the per-run rows
    errors = [abs(r["ratio"] - 1) for r in data["runs"]]
    assert overall["median_error"] == pytest.approx(statistics.median(errors))
    assert overall["worst_factor"] == pytest.approx(max(max(r["ratio"], 1 / r["ratio"]) for r in data["runs"]))
    assert sum(g["runs"] for g in data["by_method"]) == overall["runs"]


def test_every_published_run_is_estimated_without_itself(validation):
    catalog = load_catalog()
    runs = load_runs()
    assert len(validation.checks) == len(runs) and not validation.skipped
    for check in validation.checks:
        others = [r for r in runs if r.id != check.run.id]
        alone = default_efficiency(gpu=catalog.get(check.run.gpu), catalog=catalog, precision=check.run.precision,
                                   params=check.run.n_active, gpus=check.run.gpus, workload=check.run.workload,
                                   total_params=check.run.params, runs=others)
        assert check.efficiency == pytest.approx(alone.value), check.run.id
        assert check.method == alone.method
        assert check.run.id not in {n.run.id for n in alone.neighbours}


def test_a_run_left_out_is_not_its_own_nearest_neighbour():
    # DeepSeek-V3 on H800 is at distance 0 from its own job: with it the default would be ~its own figure
    catalog = load_catalog()
    with_itself = default_efficiency(gpu=catalog.get("H800"), catalog=catalog, precision="fp8", params=3.7e10,
                                     gpus=2048, total_params=6.71e11)
    check = next(c for c in leave_one_out().checks if c.run.id == "deepseek-v3-2048-h800-fp8")
    assert with_itself.neighbours[0].run.id == "deepseek-v3-2048-h800-fp8"
    assert check.efficiency < 0.8 * with_itself.value


@pytest.mark.parametrize("pid", ["llama3-405b-8192-h100", "megatron-ptdp-145.6b-1536-a100",
                                 "nemo-mbridge-llama3-70b-64-h100-fp8", "deepseek-v3-2048-h800-fp8"])
def test_published_gpu_hours_by_hand(validation, pid):
    p = POINTS[pid]
    mfu = p["mfu"] / HFU if p.get("measure") == "hfu" else p["mfu"]
    n_active = float(p["active_params"] or p["params"])
    peak = PEAK[p["gpu"]][f"{p['peak_basis']}_tflops"]
    published = 6 * n_active * 1e12 / (mfu * peak * 1e12) / 3600
    check = next(c for c in validation.checks if c.run.id == pid)
    assert check.published_gpu_hours == pytest.approx(published)
    job_peak = PEAK[p["gpu"]][f"{p['precision']}_tflops"]
    assert check.estimated_gpu_hours == pytest.approx(6 * n_active * 1e12 / (check.efficiency * job_peak * 1e12) / 3600)
    assert check.ratio == pytest.approx(check.estimated_gpu_hours / published)
    if pid == "deepseek-v3-2048-h800-fp8":
        assert published == pytest.approx(180e3, rel=0.002)  # DeepSeek-V3: 180K H800 GPU-hours per 1e12 tokens


def test_groups_are_the_search_paths(validation):
    labels = [g.label for g in validation.groups]
    assert "tier 1" in labels and "tier 1 MoE" in labels
    assert any(label.endswith("+ MoE discount") for label in labels)  # a left-out MoE run with no twin of its kind
    for g in validation.groups:
        members = [c for c in validation.checks if c.method == g.label]
        assert g.runs == len(members)
        assert g.median_error == pytest.approx(statistics.median(c.error for c in members))
        assert g.worst_factor == pytest.approx(max(c.factor for c in members))
    moe = [c for c in validation.checks if c.method == "tier 1 MoE"]
    assert moe and all(c.run.is_moe for c in moe)


def test_recorded_outcomes_raw_and_calibrated_by_hand():
    pairs = [RunPair("A100-80GB", "pretrain", 100.0, 120.0), RunPair("A100-80GB", "pretrain", 100.0, 80.0),
             RunPair("H800-SXM", "lora", 50.0, 50.0)]
    acc = outcome_accuracy(pairs)
    # raw ratios 100/120, 100/80, 1 -> errors 0.1667, 0.25, 0 -> median 0.1667; worst 1.25
    assert acc.raw.runs == 3
    assert acc.raw.median_error == pytest.approx(1 / 6)
    assert acc.raw.worst_factor == pytest.approx(1.25)
    # calibrated from the other run of the same GPU and workload: ×0.8 -> 80/120; ×1.2 -> 120/80; the
    # lone H800 run has nothing to calibrate from and is left out
    assert acc.calibrated.runs == 2
    assert acc.calibrated.median_error == pytest.approx(statistics.median([1 / 3, 0.5]))
    assert acc.calibrated.worst_factor == pytest.approx(1.5)
    assert outcome_accuracy([]) is None


def test_published_accuracy_is_cached_until_the_data_change(tmp_path, monkeypatch):
    first = published_accuracy()
    assert published_accuracy() is first
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    text = (data / "efficiency.yaml").read_text(encoding="utf-8")
    # drop the last point (the DeepSeek-V3 H800 run) from the copy
    cut = text.index("  - id: deepseek-v3-2048-h800-fp8")
    (data / "efficiency.yaml").write_text(text[:cut], encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(data))
    fewer = published_accuracy()
    assert fewer is not first and fewer.overall.runs == first.overall.runs - 1
    assert "deepseek-v3-2048-h800-fp8" not in {c.run.id for c in fewer.checks}


def test_table_renders_in_chinese(validation):
    zh = markdown_table(validation, "zh-CN")
    assert "第 1 层" in zh and "全部" in zh
    assert re.search(r"\| 全部 \| \d+ \| [\d.]+ % \| [\d.]+× \|", zh)


def test_outcomes_are_read_from_the_database_or_the_reason_is_given(tmp_path, monkeypatch):
    # a database without the schema: the published table is still given, and why outcomes are missing
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    code, out, err = _in_process("--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["outcomes_read"] is False and "db upgrade" in data["outcomes_not_read"]
    assert data["overall"]["runs"] == len(data["runs"])
    code, out, _ = _in_process()
    assert code == 0 and "| all |" in out


@pytest.mark.parametrize("pid", [pid for pid, p in POINTS.items() if p.get("tokens_per_sec_per_gpu")])
def test_published_gpu_hours_agree_with_published_tokens_per_second(validation, pid):
    # 4·N per token for a LoRA row, 6·N otherwise: the GPU-hours for 1e12 tokens are what the
    # published throughput gives (within the attention FLOPs NVIDIA also counts)
    p = POINTS[pid]
    check = next(c for c in validation.checks if c.run.id == pid)
    assert check.published_gpu_hours == pytest.approx(1e12 / float(p["tokens_per_sec_per_gpu"]) / 3600, rel=0.05)
    per_token = 4 if p["workload"] == "lora" else 6
    peak = PEAK[p["gpu"]][f"{p['peak_basis']}_tflops"]
    by_hand = per_token * float(p["params"]) * 1e12 / (p["mfu"] * peak * 1e12) / 3600
    assert check.published_gpu_hours == pytest.approx(by_hand)


def test_a_left_out_moe_run_takes_runs_of_its_kind_only_when_they_bracket_its_size(validation):
    runs = load_runs()
    catalog = load_catalog()
    family = {r.id: catalog.get(r.gpu).family for r in runs}
    for check in (c for c in validation.checks if c.run.is_moe):
        own = [r.n_active for r in runs if r.is_moe and r.id != check.run.id and family[r.id] == family[check.run.id]
               and (r.precision == "fp8") == (check.run.precision == "fp8")]
        bracketed = bool(own) and min(own) <= check.run.n_active <= max(own)
        assert (check.method == "tier 1 MoE") == bracketed, check.run.id
    methods = {c.run.id: c.method for c in validation.checks}
    # Qwen3-30B-A3B, the smallest MoE run on B200 and on H100: no smaller run of its kind is left
    assert methods["mbridge-qwen3-30b-a3b-8-b200-fp8"] == "tier 1 + MoE discount"
    assert methods["mbridge-qwen3-235b-a22b-64-b200-fp8"] == "tier 1 MoE"
