"""Default figures of the estimator (``data/estimation_defaults.yaml``), each with its source."""

from __future__ import annotations

from dataclasses import dataclass

from core.datafiles import load_derived
from core.errors import InputError


@dataclass(frozen=True)
class Default:
    """A default figure, where it comes from, and whether it is an allowance rather than a measurement."""

    name: str
    value: float
    source: str
    allowance: bool = False


def load_defaults() -> dict[str, Default]:
    """Every default of ``data/estimation_defaults.yaml`` by name (treat as read-only)."""
    return load_derived("estimation_defaults.yaml", _build)


def _build(raw: dict | None) -> dict[str, Default]:
    raw = raw or {}
    out: dict[str, Default] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
            raise InputError("error.data_entry_invalid", field="estimation_defaults.yaml", entry=name)
        out[name] = Default(name, float(entry["value"]), str(entry["source"]).strip(), bool(entry.get("allowance")))
    return out


def value(name: str) -> float:
    """The value of one default."""
    return load_defaults()[name].value
