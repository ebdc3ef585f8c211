"""The ``python -m core estimate`` command line, run as a subprocess (JSON contracts, --help, bad input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GPU_IDS = [g["id"] for g in yaml.safe_load((ROOT / "data" / "gpus.yaml").read_text(encoding="utf-8"))["gpus"]]

TRAINING_KEYS = {"total_flops", "effective_tflops_per_gpu", "gpu_hours", "wall_clock_hours", "energy_kwh", "cost",
                 "memory_per_gpu_gb", "fits_in_memory", "assumptions"}
MEMORY_KEYS = {"weights_gb", "gradients_gb", "optimizer_gb", "activations_gb", "overhead_gb", "total_gb"}

# Run as real subprocesses (each costs an interpreter start, so only the contract commands).
COMMANDS = {
    "gpus": ["estimate", "gpus", "--json"],
    "training": ["estimate", "training", "--params", "70e9", "--tokens", "2e12", "--gpu", "A100-80GB",
                 "--gpus", "1024", "--json"],
    "memory": ["estimate", "memory", "--params", "7e9", "--gpus", "8", "--zero", "3", "--json"],
    "bad_gpu": ["estimate", "training", "--params", "70e9", "--tokens", "2e12", "--gpu", "RTX-9090", "--gpus", "8"],
    "bad_params": ["estimate", "training", "--params", "-1", "--tokens", "2e12", "--gpu", "A100", "--gpus", "8"],
    "bad_gpus": ["estimate", "memory", "--params", "7e9", "--gpus", "0"],
    "bad_zero": ["estimate", "memory", "--params", "7e9", "--gpus", "8", "--zero", "5"],
}
# Further cases run in-process through core.cli.main (same parser and handlers, no interpreter start).
IN_PROCESS = {
    "gpus_text": ["estimate", "gpus"],
    "training_eff": ["estimate", "training", "--params", "70e9", "--tokens", "2e12", "--gpu", "a100",
                     "--gpus", "1024", "--efficiency", "0.4", "--json"],
    "training_text": ["estimate", "training", "--params", "7e9", "--tokens", "1e11", "--gpu", "H100", "--gpus", "8",
                      "--lang", "zh-CN"],
    "memory_text": ["estimate", "memory", "--params", "7e9", "--gpus", "8"],
    "recommend": ["estimate", "recommend", "--params", "7e9", "--tokens", "1e11", "--max-gpus", "16", "--json"],
    "bad_tp": ["estimate", "memory", "--params", "7e9", "--gpus", "8", "--tp", "3"],
    "bad_tokens": ["estimate", "training", "--params", "7e9", "--tokens", "1e20", "--gpu", "A100", "--gpus", "8"],
    "bad_precision": ["estimate", "training", "--params", "7e9", "--tokens", "1e12", "--gpu", "V100", "--gpus", "8",
                      "--precision", "bf16"],
    "bad_eff": ["estimate", "training", "--params", "7e9", "--tokens", "1e12", "--gpu", "A100", "--gpus", "8",
                "--efficiency", "1.5"],
    # mixture-of-experts (DeepSeek-V3 sized) with and without expert parallelism: TP 8 × PP 8 × DP 4
    "moe_ep1": ["estimate", "memory", "--params", "671e9", "--active-params", "37e9", "--gpus", "256", "--tp", "8",
                "--pp", "8", "--zero", "1", "--gpu", "H800", "--json"],
    "moe_ep4": ["estimate", "memory", "--params", "671e9", "--active-params", "37e9", "--gpus", "256", "--tp", "8",
                "--pp", "8", "--ep", "4", "--zero", "1", "--gpu", "H800", "--json"],
    "bad_ep_dense": ["estimate", "memory", "--params", "7e9", "--gpus", "8", "--ep", "2"],
    "bad_ep_divides": ["estimate", "memory", "--params", "671e9", "--active-params", "37e9", "--gpus", "256",
                       "--tp", "8", "--pp", "8", "--ep", "3"],
}
HELP = {
    "estimate": ["estimate", "--help"],
    "estimate training": ["estimate", "training", "--help"],
    "estimate memory": ["estimate", "memory", "--help"],
    "estimate recommend": ["estimate", "recommend", "--help"],
    "estimate gpus": ["estimate", "gpus", "--help"],
    "db": ["db", "--help"],
    "db upgrade": ["db", "upgrade", "--help"],
}


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COMPUTELOOP_DATA_DIR"}
    env["COMPUTELOOP_I18N_STRICT"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


# `--help` of every command: `estimate --help` runs as its own `python -m core` process; the other
# six run in ONE extra interpreter through core.cli.main (same parser; saves five interpreter starts,
# each of which imports Alembic for the db group).
HELP_SCRIPT = """
import contextlib, io, json, sys
from core.cli import main
out = {}
for argv in json.loads(sys.argv[1]):
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    out[" ".join(argv)] = [code, buf.getvalue(), err.getvalue()]
print(json.dumps(out))
"""


def _help_batch(argvs: list[list[str]]) -> dict[str, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if k != "COMPUTELOOP_DATA_DIR"}
    env["COMPUTELOOP_I18N_STRICT"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-c", HELP_SCRIPT, json.dumps(argvs)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return {k: subprocess.CompletedProcess(k, *v) for k, v in json.loads(r.stdout).items()}


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess]:
    """Every command of this module, run once; the subprocesses in parallel."""
    jobs = {**COMMANDS, "help:estimate": HELP["estimate"]}
    batched = {name: argv for name, argv in HELP.items() if name != "estimate"}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(_run, argv) for name, argv in jobs.items()}
        batch = pool.submit(_help_batch, list(batched.values()))
        out = {name: f.result() for name, f in futures.items()}
        by_argv = batch.result()
    for name, argv in batched.items():
        out[f"help:{name}"] = by_argv[" ".join(argv)]
    for name, argv in IN_PROCESS.items():
        out[name] = _run_in_process(argv)
    return out


def _run_in_process(argv: list[str]) -> subprocess.CompletedProcess:
    import contextlib
    import io

    from core.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


def ok_json(results, name):
    r = results[name]
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_gpus_json_lists_the_16_catalog_gpus(results):
    gpus = ok_json(results, "gpus")
    assert len(gpus) == 16
    assert [g["id"] for g in gpus] == GPU_IDS
    assert all(g["source"] and g["price_is_placeholder"] is True for g in gpus)


def test_gpus_text_has_one_line_per_gpu(results):
    r = results["gpus_text"]
    assert r.returncode == 0
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 16
    assert all(line.split()[0] in GPU_IDS for line in lines)


def test_training_json_has_the_contract_keys(results):
    d = ok_json(results, "training")
    assert TRAINING_KEYS <= set(d)
    # 6 × 70e9 × 2e12 = 8.4e23
    assert d["total_flops"] == pytest.approx(8.4e23)
    assert d["gpu"] == "A100-80GB" and d["gpus"] == 1024
    assert d["gpu_hours"] == pytest.approx(d["wall_clock_hours"] * 1024)
    assert d["cost"] == pytest.approx(d["gpu_hours"] * 15.0)
    assert isinstance(d["fits_in_memory"], bool)
    assert isinstance(d["assumptions"], list) and d["assumptions"]


def test_training_json_with_explicit_efficiency_by_hand(results):
    d = ok_json(results, "training_eff")
    # 8.4e23 / (312e12 × 0.4 × 1024) / 3600 × 1.11 (default correction)
    assert d["effective_tflops_per_gpu"] == pytest.approx(124.8)
    assert d["wall_clock_hours"] == pytest.approx(8.4e23 / (312e12 * 0.4 * 1024) / 3600 * 1.11)
    assert d["efficiency_source"] == "user"


def test_training_text_output_renders_in_chinese(results):
    r = results["training_text"]
    assert r.returncode == 0, r.stderr
    assert "total_flops" in r.stdout and "wall_clock_hours" in r.stdout


def test_memory_json_has_the_terms_and_they_add_up(results):
    d = ok_json(results, "memory")
    assert MEMORY_KEYS <= set(d)
    assert d["total_gb"] == pytest.approx(sum(d[k] for k in MEMORY_KEYS - {"total_gb"}))
    # 7e9 params, ZeRO-3 over 8: gradients 2 × 7e9 / 8 = 1.75 GB, AdamW 12 × 7e9 / 8 = 10.5 GB
    assert d["gradients_gb"] == pytest.approx(1.75)
    assert d["optimizer_gb"] == pytest.approx(10.5)
    # weights 2 × 7e9 / 8 = 1.75 GB + gather buffer of one Llama-2-7B-shaped layer (the preset
    # nearest 7e9): 4 × (7e9 − 2·32000·4096)/32 = 0.842232 GB
    assert d["weights_gb"] == pytest.approx(1.75 + 0.842232)
    assert d["fits_in_memory"] is True


def test_memory_text_shows_the_verdict(results):
    r = results["memory_text"]
    assert r.returncode == 0, r.stderr
    assert "total" in r.stdout and "A100-80GB" in r.stdout


def test_recommend_json_has_options_pareto_and_choice(results):
    d = ok_json(results, "recommend")
    assert d["options"] and d["pareto"] and d["choice"]
    assert all(o["gpus"] <= 16 for o in d["options"])
    assert d["choice"]["pareto"] is True


@pytest.mark.parametrize("command", sorted(HELP))
def test_help_works_on_every_command(results, command):
    r = results[f"help:{command}"]
    assert r.returncode == 0, r.stderr
    assert r.stdout.lower().startswith("usage:")
    assert r.stderr == ""


@pytest.mark.parametrize("name,field", [
    ("bad_gpu", "gpu"),
    ("bad_params", "--params"),
    ("bad_gpus", "--gpus"),
    ("bad_zero", "--zero"),
    ("bad_tp", "gpus"),
    ("bad_tokens", "tokens"),
    ("bad_precision", "precision"),
    ("bad_eff", "efficiency"),
    ("bad_ep_dense", "ep"),
    ("bad_ep_divides", "ep"),
])
def test_bad_input_exits_2_with_one_stderr_line_naming_the_field(results, name, field):
    r = results[name]
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert field in lines[0]
    assert r.stdout == ""


def test_unknown_gpu_error_starts_with_the_field_name(results):
    assert results["bad_gpu"].stderr.startswith("error: gpu: ")


def test_estimate_inference_contract_keys_with_the_loadtest_option():
    files = sorted(str(p) for p in (ROOT / "tests" / "fixtures" / "loadtests").glob("vllm-infqps-*.json"))
    out = _run(["estimate", "inference", "--loadtest", *files, "--slo", "p99_ms=2000", "--peak-qps", "30", "--json"])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {"max_qps_per_replica", "replicas", "gpus", "operating_point", "curve"} <= set(doc)
    assert doc["replicas"] >= 2 and len(doc["curve"]) == len(files)


def test_estimate_inference_with_a_missing_percentile_names_the_file_and_exits_2(tmp_path):
    bad = tmp_path / "curve.csv"
    bad.write_text("concurrency,qps,p50_ms\n1,10,50\n2,18,60\n", encoding="utf-8")
    out = _run(["estimate", "inference", "--loadtest", str(bad), "--slo", "p99_ms=200", "--peak-qps", "30"])
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "curve.csv" in out.stderr


def test_memory_expert_parallelism_divides_the_expert_states_not_the_shared_ones(results):
    """`--ep`: the expert weights and optimizer states per GPU shrink with expert parallelism;
    activations (from the active parameters) do not change."""
    one, four = ok_json(results, "moe_ep1"), ok_json(results, "moe_ep4")
    assert four["weights_gb"] < one["weights_gb"] and four["optimizer_gb"] <= one["optimizer_gb"]
    assert four["activations_gb"] == pytest.approx(one["activations_gb"])
    assert four["total_gb"] < one["total_gb"]
