"""Loading the YAML files in ``data/`` with errors that name the file and the entry."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from core import config
from core.errors import InputError

T = TypeVar("T")


def data_path(name: str) -> Path:
    """Path of ``name`` inside the configured data folder."""
    return config.load().data_dir / name


def load_yaml(name: str) -> Any:
    """Parse ``data/<name>`` (cached until the file changes; treat the result as read-only).

    A missing or malformed file raises :class:`InputError` naming it.
    """
    path = data_path(name)
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise InputError("error.data_file_missing", field=str(path)) from None
    return _parse(str(path), stamp)


@lru_cache(maxsize=64)
def _parse(path_text: str, _stamp: int) -> Any:
    path = Path(path_text)
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError("error.data_file_missing", field=str(path)) from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
        raise InputError("error.data_file_invalid", field=str(path), line=line, detail=str(exc).splitlines()[0]) from None


_derived: dict[tuple[str, str], tuple[Any, Any]] = {}


def load_derived(name: str, build: Callable[[Any], T]) -> T:
    """``build(load_yaml(name))``, rebuilt only when the file changed.

    The cache entry keeps the parsed document it was built from, so an identity check is enough
    to know the file has not been re-read since.
    """
    raw = load_yaml(name)
    key = (name, f"{build.__module__}.{build.__qualname__}")
    hit = _derived.get(key)
    if hit is None or hit[0] is not raw:
        hit = (raw, build(raw))
        _derived[key] = hit
    return hit[1]
