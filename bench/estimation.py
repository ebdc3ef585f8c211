"""Estimation speed: one training estimate, one memory estimate, one recommendation over the whole
catalog, one inference sizing — each timed on one core after a warm-up, median of repeats.

Targets (issue #2): an estimate in under 20 ms; a recommendation over the catalog in under 300 ms.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

from core.estimation.catalog import load_catalog
from core.estimation.inference import size_inference
from core.estimation.loadtest_formats import parse_sweep
from core.estimation.memory import Layout, estimate_memory
from core.estimation.model import ModelSpec, complete_architecture
from core.estimation.recommend import recommend
from core.estimation.training import TrainingInput, estimate_training

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "loadtests"


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: file caches and imports
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def run() -> list[tuple[str, float, float]]:
    """(name, median ms, target ms) for each benchmark."""
    model70 = ModelSpec(params=70e9)
    full70, _ = complete_architecture(model70)
    a100 = load_catalog().get("A100-80GB")
    sweep_files = [(p.name, p.read_bytes()) for p in sorted(FIXTURES.glob("vllm-infqps-*.json"))]
    return [
        ("training estimate (70B, 2T tokens, 1024 × A100, layout search)",
         _median_ms(lambda: estimate_training(TrainingInput(model=model70, tokens=2e12, gpu="A100", gpus=1024)), 50), 20.0),
        ("memory estimate (70B, ZeRO-3, TP 8)",
         _median_ms(lambda: estimate_memory(full70, Layout(gpus=64, zero=3, tp=8), a100), 200), 20.0),
        ("inference sizing (4-file vLLM sweep, parse + size)",
         _median_ms(lambda: size_inference(parse_sweep(sweep_files), slos={"p99_ms": 2000}, peak_qps=50), 50), 20.0),
        ("recommendation, 7B over the whole catalog",
         _median_ms(lambda: recommend(model=ModelSpec(params=7e9), tokens=1e11, whole_catalog=True), 10), 300.0),
        ("recommendation, 70B over the whole catalog",
         _median_ms(lambda: recommend(model=model70, tokens=2e12, whole_catalog=True), 10), 300.0),
        ("recommendation, 405B over the whole catalog",
         _median_ms(lambda: recommend(model=ModelSpec(params=405e9), tokens=15e12, whole_catalog=True), 10), 300.0),
    ]
