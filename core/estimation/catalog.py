"""The hardware catalog (``data/gpus.yaml``): GPU specs, prices and their sources.

Ids are matched case-insensitively, ignoring spaces, dashes and underscores, and through each
entry's aliases, so "a100", "A100 80GB" and "a100-80gb" all find ``A100-80GB``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.datafiles import load_derived
from core.errors import InputError

PRECISIONS: tuple[str, ...] = ("bf16", "fp16", "fp8")

_REQUIRED = (
    "id", "vendor", "family", "form_factor", "bf16_tflops", "fp16_tflops", "fp8_tflops", "memory_gb", "memory_bandwidth_gbps",
    "interconnect", "interconnect_gbps", "tdp_w", "price_cny_per_gpu_hour", "price_is_placeholder",
    "source",
)


@dataclass(frozen=True)
class GPU:
    """One accelerator model as the catalog describes it."""

    id: str
    vendor: str
    family: str
    form_factor: str
    bf16_tflops: float | None
    fp16_tflops: float
    fp8_tflops: float | None
    memory_gb: float
    memory_bandwidth_gbps: float
    interconnect: str
    interconnect_gbps: float
    tdp_w: float
    price_cny_per_gpu_hour: float
    price_is_placeholder: bool
    source: str
    aliases: tuple[str, ...] = ()
    unpublished: tuple[str, ...] = field(default_factory=tuple)

    def peak_tflops(self, precision: str) -> float | None:
        """Dense peak TFLOP/s at ``precision`` ('bf16', 'fp16', 'fp8'), or None if unsupported."""
        return {"bf16": self.bf16_tflops, "fp16": self.fp16_tflops, "fp8": self.fp8_tflops}[precision]

    @property
    def memory_bytes(self) -> float:
        """Device memory in bytes. Vendors' "GB" for HBM/GDDR boards is binary (an "80 GB" A100
        reports 81,920 MiB), so this is memory_gb × 2^30."""
        return self.memory_gb * 2**30

    @property
    def has_fast_interconnect(self) -> bool:
        """True for NVLink/HCCS-class links (>= 200 GB/s), the kind tensor parallelism needs."""
        return self.interconnect_gbps >= 200

    def as_dict(self) -> dict:
        """Plain dict for JSON and tables."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


@dataclass(frozen=True)
class Catalog:
    """All GPUs of the catalog, with lookup by id or alias."""

    gpus: tuple[GPU, ...]
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for gpu in self.gpus:
            for name in (gpu.id, *gpu.aliases):
                self._index.setdefault(_norm(name), gpu)

    def get(self, name: str) -> GPU:
        """The GPU called ``name`` (id or alias, any case); :class:`InputError` if unknown."""
        gpu = self._index.get(_norm(name or ""))
        if gpu is None:
            raise InputError(
                "error.unknown_gpu", field="gpu", value=name, known=", ".join(g.id for g in self.gpus)
            )
        return gpu

    def ids(self) -> list[str]:
        """Catalog ids in file order."""
        return [g.id for g in self.gpus]


def _parse_entry(raw: dict, position: int, filename: str) -> GPU:
    if not isinstance(raw, dict):
        raise InputError("error.catalog_entry_invalid", field=filename, entry=f"#{position + 1}",
                         detail="each entry must be a mapping of field: value")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise InputError(
            "error.catalog_entry_invalid", field=filename, entry=raw.get("id", f"#{position + 1}"),
            detail="missing " + ", ".join(missing),
        )
    values = {k: raw.get(k) for k in GPU.__dataclass_fields__ if k in raw}
    values["aliases"] = tuple(str(a) for a in raw.get("aliases") or ())
    values["unpublished"] = tuple(raw.get("unpublished") or ())
    optional = ("bf16_tflops", "fp8_tflops")
    for key in ("fp16_tflops", "memory_gb", "memory_bandwidth_gbps", "interconnect_gbps", "tdp_w", *optional):
        value = values[key]
        if value is None and key in optional:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise InputError(
                "error.catalog_entry_invalid", field=filename, entry=raw["id"],
                detail=f"{key} must be a positive number, not {value!r}",
            )
    price = values["price_cny_per_gpu_hour"]
    if isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0:
        raise InputError("error.catalog_entry_invalid", field=filename, entry=raw["id"],
                         detail=f"price_cny_per_gpu_hour must be a number >= 0, not {price!r}")
    return GPU(**values)


def _build(raw: dict | None) -> Catalog:
    if raw is not None and not isinstance(raw, dict):
        raise InputError("error.catalog_entry_invalid", field="gpus.yaml", entry="*",
                         detail="the file must be a mapping with a 'gpus:' list")
    entries = (raw or {}).get("gpus") or []
    if not isinstance(entries, list):
        raise InputError("error.catalog_entry_invalid", field="gpus.yaml", entry="gpus", detail="'gpus' must be a list")
    gpus = tuple(_parse_entry(e, i, "gpus.yaml") for i, e in enumerate(entries))
    ids = [_norm(g.id) for g in gpus]
    if len(ids) != len(set(ids)):
        raise InputError("error.catalog_entry_invalid", field="gpus.yaml", entry="*", detail="duplicate ids")
    return Catalog(gpus)


def load_catalog() -> Catalog:
    """The catalog from the configured data folder (rebuilt when the file changes)."""
    return load_derived("gpus.yaml", _build)
