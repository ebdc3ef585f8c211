"""Inference sizing: from a load-test curve to the operating point and a GPU count, and LLM memory
sizing when there is no load test yet.

The curve is concurrency → (QPS, latency statistics). The operating point is the highest QPS of
one replica at which every SLO holds; between two measured points the curve is taken as linear
in concurrency, so an SLO boundary that falls between them is interpolated. Replicas follow

    replicas = max(ceil(peak_qps / (max_qps_per_replica × target_util)) [+ 1 for N+1], min_replicas)

Defaults (target utilisation, HA minimum, Little's-law tolerance, LLM overhead) live in
``data/inference_defaults.yaml`` with their sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from core.datafiles import load_yaml
from core.errors import InputError
from core.estimation.catalog import GPU
from core.estimation.loadtest_formats import LATENCY_KEYS, CurvePoint, Sweep, _num
from core.i18n import Msg

DEFAULTS_FILE = "inference_defaults.yaml"
_DEFAULT_KEYS = (
    "target_utilization", "min_replicas", "littles_law_tolerance", "llm_overhead_fraction",
    "tensor_parallel_sizes",
)

# Floating-point slack when comparing an interpolated latency with its SLO and before ceil():
# 120 / (50 × 0.8) must give 3 replicas, not 4 because of a trailing 1e-15.
_EPS = 1e-9


def load_defaults() -> dict[str, Any]:
    """The sizing defaults from ``data/inference_defaults.yaml`` (each entry's ``value``)."""
    raw = load_yaml(DEFAULTS_FILE) or {}
    values: dict[str, Any] = {}
    for key in _DEFAULT_KEYS:
        entry = raw.get(key)
        if not isinstance(entry, dict) or "value" not in entry or not entry.get("source"):
            raise InputError(
                "inference.defaults_invalid", field=DEFAULTS_FILE, entry=key, detail="needs value and source",
            )
        values[key] = entry["value"]
    return values


# ---------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class OperatingPoint:
    """The highest-QPS point of the curve at which every SLO holds."""

    concurrency: float
    qps: float
    latency_ms: dict[str, float]
    interpolated: bool
    limiting_slo: str

    def as_dict(self) -> dict:
        """Plain dict for JSON and tables."""
        return {
            "concurrency": round(self.concurrency, 4),
            "qps": round(self.qps, 4),
            **{k: round(self.latency_ms[k], 3) for k in LATENCY_KEYS if k in self.latency_ms},
            "interpolated": self.interpolated,
            "limiting_slo": self.limiting_slo,
        }


@dataclass(frozen=True)
class InferenceSizing:
    """Replica and GPU count for an online inference service, with how it was derived."""

    max_qps_per_replica: float
    replicas: int
    gpus: int
    operating_point: OperatingPoint
    curve: tuple[CurvePoint, ...]
    slos: dict[str, float]
    peak_qps: float
    mean_qps: float | None
    replicas_for_mean: int | None
    gpus_for_mean: int | None
    target_util: float
    gpus_per_replica: int
    min_replicas: int
    n_plus_one: bool
    formula: str
    warnings: tuple[Msg, ...] = ()
    inconsistent_points: tuple[float, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict:
        """Plain dict for JSON, the page and the CLI."""
        return {
            "max_qps_per_replica": round(self.max_qps_per_replica, 4),
            "replicas": self.replicas,
            "gpus": self.gpus,
            "operating_point": self.operating_point.as_dict(),
            "curve": [
                {**p.as_dict(), "littles_law_inconsistent": p.concurrency in self.inconsistent_points}
                for p in self.curve
            ],
            "slos": dict(self.slos),
            "peak_qps": self.peak_qps,
            "mean_qps": self.mean_qps,
            "replicas_for_mean": self.replicas_for_mean,
            "gpus_for_mean": self.gpus_for_mean,
            "target_util": self.target_util,
            "gpus_per_replica": self.gpus_per_replica,
            "min_replicas": self.min_replicas,
            "n_plus_one": self.n_plus_one,
            "formula": self.formula,
            "warnings": [{"key": w.key, "params": dict(w.params)} for w in self.warnings],
            "sources": [{"file": f, "format": fmt} for f, fmt in self.sources],
        }


# ---------------------------------------------------------------------------------------------
# validation helpers


def _positive(name: str, value: Any, *, upper: float | None = None, inclusive_upper: bool = True) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError("inference.not_positive", field=name, value=repr(value)) from None
    if not math.isfinite(number) or number <= 0:
        raise InputError("inference.not_positive", field=name, value=repr(value))
    if upper is not None and (number > upper if inclusive_upper else number >= upper):
        raise InputError("inference.out_of_range", field=name, value=_num(number), low="0", high=_num(upper))
    return number


def _whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < minimum:
        raise InputError("inference.whole_number", field=name, value=repr(value), minimum=minimum)
    return int(value)


def validate_slos(slos: Mapping[str, Any]) -> dict[str, float]:
    """SLOs as {normalised latency key: limit in ms}; unknown keys and non-positive limits are errors."""
    if not slos:
        raise InputError("inference.no_slo", field="slos", known=", ".join(LATENCY_KEYS))
    clean: dict[str, float] = {}
    for key, limit in slos.items():
        if key not in LATENCY_KEYS:
            raise InputError("inference.unknown_slo", field="slos", value=key, known=", ".join(LATENCY_KEYS))
        clean[key] = _positive(f"slos.{key}", limit)
    return clean


# ---------------------------------------------------------------------------------------------
# curve


def _interpolate(a: CurvePoint, b: CurvePoint, concurrency: float, keys: set[str]) -> tuple[float, dict[str, float]]:
    t = (concurrency - a.concurrency) / (b.concurrency - a.concurrency)
    qps = a.qps + t * (b.qps - a.qps)
    latency = {
        k: a.latency_ms[k] + t * (b.latency_ms[k] - a.latency_ms[k])
        for k in keys if k in a.latency_ms and k in b.latency_ms
    }
    return qps, latency


def _meets(latency: Mapping[str, float], slos: Mapping[str, float]) -> bool:
    return all(latency[k] <= limit * (1 + _EPS) + _EPS for k, limit in slos.items())


def _limiting(latency: Mapping[str, float], slos: Mapping[str, float]) -> str:
    """The SLO closest to (or furthest past) its limit: the one that stops more load."""
    return max(slos, key=lambda k: (latency[k] / slos[k], k))


def find_operating_point(points: tuple[CurvePoint, ...] | list[CurvePoint], slos: Mapping[str, float]) -> OperatingPoint | None:
    """The highest-QPS point where every SLO holds, or None when even the first point fails.

    Within a segment between two measured points QPS and latencies are linear in concurrency, so
    the best feasible point of a segment is one of its ends or a point where some latency
    crosses its SLO; those are the only candidates.
    """
    candidates: list[OperatingPoint] = []
    for p in points:
        if _meets(p.latency_ms, slos):
            candidates.append(OperatingPoint(p.concurrency, p.qps, dict(p.latency_ms), False, _limiting(p.latency_ms, slos)))
    for a, b in zip(points, points[1:]):
        for key, limit in slos.items():
            la, lb = a.latency_ms[key], b.latency_ms[key]
            if (la - limit) * (lb - limit) >= 0 or la == lb:
                continue  # no crossing strictly inside the segment
            c = a.concurrency + (limit - la) / (lb - la) * (b.concurrency - a.concurrency)
            qps, latency = _interpolate(a, b, c, set(a.latency_ms) | set(b.latency_ms))
            if _meets(latency, slos):
                candidates.append(OperatingPoint(c, qps, latency, True, key))
    if not candidates:
        return None
    # Highest QPS; on a tie prefer the lower concurrency (same throughput, less latency).
    return max(candidates, key=lambda op: (round(op.qps, 9), -op.concurrency))


def littles_law_check(points: tuple[CurvePoint, ...] | list[CurvePoint], tolerance: float) -> list[tuple[CurvePoint, float, float]]:
    """Points whose concurrency is not ≈ QPS × mean latency: (point, implied concurrency, deviation).

    Only points with a mean latency can be checked; the deviation is relative to the stated
    concurrency. Points whose concurrency was itself estimated by Little's law are skipped.
    """
    flagged = []
    for p in points:
        mean = p.latency_ms.get("mean_ms")
        if mean is None or p.concurrency_estimated or p.concurrency <= 0:
            continue
        implied = p.qps * mean / 1000.0
        deviation = abs(implied - p.concurrency) / p.concurrency
        if deviation > tolerance:
            flagged.append((p, implied, deviation))
    return flagged


# ---------------------------------------------------------------------------------------------
# sizing


def replicas_needed(qps: float, max_qps_per_replica: float, target_util: float, min_replicas: int, n_plus_one: bool) -> int:
    """Replicas for ``qps``: load replicas (+1 for N+1), never fewer than ``min_replicas``.

    N+1 is added to the load count before the HA floor: when one replica carries the load, the
    HA minimum of 2 already holds the spare.
    """
    load = math.ceil(qps / (max_qps_per_replica * target_util) - _EPS)
    return max(max(load, 1) + (1 if n_plus_one else 0), min_replicas)


def size_inference(
    sweep: Sweep,
    *,
    slos: Mapping[str, Any],
    peak_qps: float,
    mean_qps: float | None = None,
    target_util: float | None = None,
    gpus_per_replica: int = 1,
    min_replicas: int | None = None,
    n_plus_one: bool = False,
) -> InferenceSizing:
    """Replicas and GPUs for an online inference service from a load-test sweep of one replica.

    Args:
        sweep: the parsed load test (one replica, several concurrency levels).
        slos: latency limits in ms by normalised key, e.g. ``{"p99_ms": 200, "ttft_p99_ms": 500}``.
        peak_qps: the peak request rate the service must carry.
        mean_qps: the mean request rate, for a comparison count (optional, <= peak_qps).
        target_util: share of the SLO-bound QPS a replica is planned at; default from
            ``data/inference_defaults.yaml`` (0.8).
        gpus_per_replica: GPUs of one replica (the load test's setup).
        min_replicas: high-availability floor; default from the data file (2).
        n_plus_one: add one spare replica on top of the load.

    Raises:
        InputError: a bad argument (named field); an SLO key missing from the data (field = the
            files); no measured point meets the SLOs (field = "slos", with the lowest latency).
    """
    defaults = load_defaults()
    slo = validate_slos(slos)
    peak = _positive("peak_qps", peak_qps)
    mean = None if mean_qps is None else _positive("mean_qps", mean_qps)
    if mean is not None and mean > peak * (1 + _EPS):
        raise InputError("inference.mean_above_peak", field="mean_qps", mean=_num(mean), peak=_num(peak))
    util = _positive("target_util", defaults["target_utilization"] if target_util is None else target_util, upper=1.0)
    per_replica = _whole("gpus_per_replica", gpus_per_replica, 1)
    floor = _whole("min_replicas", defaults["min_replicas"] if min_replicas is None else min_replicas, 1)
    tolerance = float(defaults["littles_law_tolerance"])

    points = sweep.points
    if not points:
        raise InputError("error.loadtest_no_rows", field=", ".join(sweep.files) or "files")
    for key in slo:
        lacking = sorted({p.source for p in points if key not in p.latency_ms})
        if lacking:
            available = sorted({k for p in points for k in p.latency_ms})
            raise InputError(
                "inference.slo_not_in_data", field=", ".join(lacking), missing=key,
                available=", ".join(available) or "-",
            )

    op = find_operating_point(points, slo)
    if op is None:
        _raise_no_point(points, slo)

    replicas = replicas_needed(peak, op.qps, util, floor, n_plus_one)
    replicas_mean = None if mean is None else replicas_needed(mean, op.qps, util, floor, n_plus_one)

    warnings: list[Msg] = list(sweep.warnings)
    flagged = littles_law_check(points, tolerance)
    for p, implied, deviation in flagged:
        warnings.append(Msg("inference.littles_law_inconsistent", {
            "concurrency": _num(p.concurrency), "qps": _num(round(p.qps, 3)),
            "mean_ms": _num(round(p.latency_ms["mean_ms"], 1)), "implied": _num(round(implied, 2)),
            "deviation_pct": round(deviation * 100), "tolerance_pct": round(tolerance * 100), "file": p.source,
        }))
    if not op.interpolated and op.concurrency == points[-1].concurrency:
        # The SLOs still hold at the highest measured load: the real limit is beyond the data.
        warnings.append(Msg("inference.slo_not_reached", {"concurrency": _num(points[-1].concurrency)}))

    load_term = f"ceil({_num(peak)} / ({_num(round(op.qps, 3))} × {_num(util)}))"
    if n_plus_one:
        load_term += " + 1"
    formula = (
        f"replicas = max({load_term}, {floor}) = {replicas}; "
        f"gpus = {replicas} × {per_replica} = {replicas * per_replica}"
    )
    return InferenceSizing(
        max_qps_per_replica=op.qps, replicas=replicas, gpus=replicas * per_replica, operating_point=op,
        curve=points, slos=slo, peak_qps=peak, mean_qps=mean, replicas_for_mean=replicas_mean,
        gpus_for_mean=None if replicas_mean is None else replicas_mean * per_replica,
        target_util=util, gpus_per_replica=per_replica, min_replicas=floor, n_plus_one=n_plus_one,
        formula=formula, warnings=tuple(warnings),
        inconsistent_points=tuple(p.concurrency for p, _, _ in flagged), sources=sweep.sources,
    )


def _raise_no_point(points: tuple[CurvePoint, ...], slos: Mapping[str, float]) -> None:
    # Report the SLO that fails worst at the most favourable point, with its lowest measured value.
    best = min(points, key=lambda p: max(p.latency_ms[k] / slos[k] for k in slos))
    key = _limiting(best.latency_ms, slos)
    lowest = min(points, key=lambda p: p.latency_ms[key])
    raise InputError(
        "inference.no_point_meets_slo", field="slos", metric=key,
        lowest=_num(round(lowest.latency_ms[key], 1)), concurrency=_num(lowest.concurrency),
        slo=_num(slos[key]),
    )


# ---------------------------------------------------------------------------------------------
# LLM sizing without a load test


@dataclass(frozen=True)
class LLMSizing:
    """Memory footprint of an LLM deployment, the smallest TP size that fits, and a decode bound."""

    gpu: str
    weights_bytes: float
    kv_bytes_per_token: float
    kv_cache_bytes: float
    overhead_bytes: float
    total_bytes: float
    tensor_parallel: int
    memory_per_gpu_bytes: float
    gpu_memory_bytes: float
    decode_tokens_per_s_per_sequence_upper_bound: float
    decode_tokens_per_s_upper_bound: float
    concurrent_sequences: int
    overhead_fraction: float
    notes: tuple[Msg, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        """Plain dict for JSON; byte figures also in GB (1e9 bytes) for reading."""
        gb = 1e9
        return {
            "gpu": self.gpu,
            "weights_gb": round(self.weights_bytes / gb, 3),
            "kv_bytes_per_token": int(self.kv_bytes_per_token),
            "kv_cache_gb": round(self.kv_cache_bytes / gb, 3),
            "overhead_gb": round(self.overhead_bytes / gb, 3),
            "total_gb": round(self.total_bytes / gb, 3),
            "tensor_parallel": self.tensor_parallel,
            "memory_per_gpu_gb": round(self.memory_per_gpu_bytes / gb, 3),
            "gpu_memory_gb": round(self.gpu_memory_bytes / gb, 3),
            "decode_tokens_per_s_per_sequence_upper_bound": round(self.decode_tokens_per_s_per_sequence_upper_bound, 2),
            "decode_tokens_per_s_upper_bound": round(self.decode_tokens_per_s_upper_bound, 2),
            "concurrent_sequences": self.concurrent_sequences,
            "overhead_fraction": self.overhead_fraction,
            "is_upper_bound": True,
            "notes": [{"key": n.key, "params": dict(n.params)} for n in self.notes],
        }


def kv_cache_bytes_per_token(*, layers: int, kv_heads: int, head_dim: int, kv_bytes: float = 2) -> float:
    """KV-cache bytes per token: 2 (K and V) × layers × KV heads × head dim × bytes per value."""
    return 2 * layers * kv_heads * head_dim * kv_bytes


def size_llm(
    *,
    params: float,
    layers: int,
    kv_heads: int,
    head_dim: int,
    weight_bytes: float = 2,
    kv_bytes: float = 2,
    tokens_in_flight: int,
    gpu: GPU,
    overhead_fraction: float | None = None,
    concurrent_sequences: int = 1,
) -> LLMSizing:
    """Memory of weights + KV cache + overhead, the smallest tensor-parallel size of ``gpu`` that
    holds it, and an UPPER BOUND on decode speed from memory bandwidth.

    Decode is memory-bound: every step reads this GPU's shard of the weights and of the KV cache
    once, so steps/s ≤ bandwidth / ((weights + KV cache) / TP). Each step emits one token per
    sequence; ``concurrent_sequences`` turns that into an aggregate bound. Real engines reach
    perhaps 50–80 % of it; compute, communication and scheduling are not modelled.

    Raises:
        InputError: a non-positive argument (named field), or no TP size up to the largest in
            ``data/inference_defaults.yaml`` fits (field "gpu").
    """
    defaults = load_defaults()
    n_params = _positive("params", params)
    n_layers = _whole("layers", layers, 1)
    n_kv = _whole("kv_heads", kv_heads, 1)
    n_dim = _whole("head_dim", head_dim, 1)
    w_bytes = _positive("weight_bytes", weight_bytes)
    k_bytes = _positive("kv_bytes", kv_bytes)
    tokens = _whole("tokens_in_flight", tokens_in_flight, 1)
    sequences = _whole("concurrent_sequences", concurrent_sequences, 1)
    overhead = float(defaults["llm_overhead_fraction"] if overhead_fraction is None else overhead_fraction)
    if not math.isfinite(overhead) or overhead < 0 or overhead >= 1:
        raise InputError("inference.out_of_range", field="overhead_fraction", value=repr(overhead_fraction), low="0", high="1")

    weights = n_params * w_bytes
    per_token = kv_cache_bytes_per_token(layers=n_layers, kv_heads=n_kv, head_dim=n_dim, kv_bytes=k_bytes)
    kv_total = per_token * tokens
    overhead_b = overhead * (weights + kv_total)
    total = weights + kv_total + overhead_b
    gpu_mem = gpu.memory_bytes
    sizes = sorted(int(s) for s in defaults["tensor_parallel_sizes"])
    tp = next((s for s in sizes if total / s <= gpu_mem), None)
    if tp is None:
        raise InputError(
            "inference.llm_does_not_fit", field="gpu", gpu=gpu.id, need_gb=_num(round(total / 1e9, 1)),
            tp=sizes[-1], have_gb=_num(round(sizes[-1] * gpu.memory_gb, 1)),
        )
    bytes_per_step_per_gpu = (weights + kv_total) / tp
    steps_per_s = gpu.memory_bandwidth_gbps * 1e9 / bytes_per_step_per_gpu
    return LLMSizing(
        gpu=gpu.id, weights_bytes=weights, kv_bytes_per_token=per_token, kv_cache_bytes=kv_total,
        overhead_bytes=overhead_b, total_bytes=total, tensor_parallel=tp, memory_per_gpu_bytes=total / tp,
        gpu_memory_bytes=gpu_mem, decode_tokens_per_s_per_sequence_upper_bound=steps_per_s,
        decode_tokens_per_s_upper_bound=steps_per_s * sequences, concurrent_sequences=sequences,
        overhead_fraction=overhead, notes=(Msg("inference.llm_decode_upper_bound", {}),),
    )
