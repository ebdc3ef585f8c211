"""A private copy of ``data/`` for tests that change a data file: the ``data_copy`` fixture and a writer
whose change the mtime-keyed caches (core/datafiles.py) see at once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core.config import DATA_DIR


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A private copy of data/ that COMPUTELOOP_DATA_DIR points at."""
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(target))
    return target


def write_data(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` and move its mtime on, so the change is visible to the mtime-keyed
    cache even on coarse-timestamp filesystems."""
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
