"""The warning thresholds (``data/warning_thresholds.yaml``) and the reclaim policy
(``data/reclaim_policy.yaml``), each rebuilt only when its file changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.datafiles import load_derived
from core.errors import InputError


@dataclass(frozen=True)
class Thresholds:
    """Warning levels: yellow when mean util and mean memory are both below ``yellow_below``,
    orange when mean util is above ``orange_above``; nothing below ``min_coverage``."""

    yellow_below: float = 0.20
    orange_above: float = 0.80
    min_coverage: float = 0.60


@dataclass(frozen=True)
class ReclaimPolicy:
    """Expiry, notices, extensions, retention and candidate detection figures."""

    expiring_pool_kinds: tuple[str, ...]
    notice_days: tuple[int, ...]
    extension_min_working_days: int
    extension_max_days: int
    data_retention_days: int
    candidate_peak_below: float
    candidate_min_day_coverage: float
    candidate_min_days: int
    inference_pool_kinds: tuple[str, ...]
    l1_pool_kinds: tuple[str, ...]
    expiring_window_days: int


def _ratio(raw: dict, name: str) -> float:
    value = float(raw[name])
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be a ratio 0-1")
    return value


def _build_thresholds(raw: Any) -> Thresholds:
    try:
        return Thresholds(_ratio(raw, "yellow_below"), _ratio(raw, "orange_above"), _ratio(raw, "min_coverage"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError("error.data_entry_invalid", field="warning_thresholds.yaml", entry=str(exc)) from None


def _build_policy(raw: Any) -> ReclaimPolicy:
    try:
        return ReclaimPolicy(
            expiring_pool_kinds=tuple(raw["expiring_pool_kinds"]),
            notice_days=tuple(sorted((int(d) for d in raw["notice_days"]), reverse=True)),
            extension_min_working_days=int(raw["extension_min_working_days"]),
            extension_max_days=int(raw["extension_max_days"]),
            data_retention_days=int(raw["data_retention_days"]),
            candidate_peak_below=_ratio(raw, "candidate_peak_below"),
            candidate_min_day_coverage=_ratio(raw, "candidate_min_day_coverage"),
            candidate_min_days=int(raw["candidate_min_days"]),
            inference_pool_kinds=tuple(raw["inference_pool_kinds"]),
            l1_pool_kinds=tuple(raw["l1_pool_kinds"]),
            expiring_window_days=int(raw["expiring_window_days"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError("error.data_entry_invalid", field="reclaim_policy.yaml", entry=str(exc)) from None


def load_thresholds() -> Thresholds:
    """``data/warning_thresholds.yaml``."""
    return load_derived("warning_thresholds.yaml", _build_thresholds)


def load_policy() -> ReclaimPolicy:
    """``data/reclaim_policy.yaml``."""
    return load_derived("reclaim_policy.yaml", _build_policy)
