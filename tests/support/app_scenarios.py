"""Data the AppTest modules set up before opening a page: the demo personas, an intake form dated
relative to the frozen clock, and a page cache that never expires during a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.identity import Identity, load_personas
from tests.support import clock


def people() -> dict[str, Identity]:
    """The demo personas of data/personas.yaml by id (the identities the pages act as)."""
    return {p.id: p for p in load_personas()}


def persona(persona_id: str) -> Identity:
    """One demo persona."""
    return people()[persona_id]


def form(gpus: int, pool: str = "hq-ft", priority: str = "normal", start_offset: int = 1) -> dict:
    """A complete L2 fine-tuning form of 张伟 (digital) for ``gpus`` GPUs × 5 days on ``pool``,
    starting ``start_offset`` days from the frozen today (tomorrow by default)."""
    return {
        "applicant": "张伟", "department": "digital", "project": "P-LLM-01", "contact": "010-1",
        "demand_type": "training", "demand_subtype": "l2_finetune", "business_background": "微调",
        "expected_value": "效率", "model_name": "Qwen2.5-7B", "framework": "PyTorch", "parameters": 7.6e9,
        "data_size_gb": 50, "data_type": "text", "gpu_model": "H20", "gpus_per_run": gpus, "hours_per_run": 10,
        "runs_per_period": 1, "run_period": "week", "cuda_version": "12.1", "python_version": "3.11",
        "key_libraries": {"torch": "2.3.1"}, "pool": pool, "requested_gpus": gpus,
        "start_date": clock.iso(start_offset), "duration_days": 5, "priority": priority,
    }


def one_long_cache_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache slots of 10^9 s, so that no slot boundary falls between the reruns of a test: only a
    change can make a page read again."""
    import shutil

    from core.config import DATA_DIR

    shutil.copytree(DATA_DIR, tmp_path / "data")
    (tmp_path / "data" / "page_cache.yaml").write_text("queue_ttl_s: 1000000000\nboard_ttl_s: 1000000000\n",
                                                       encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(tmp_path / "data"))
