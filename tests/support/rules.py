"""Test data folders with one setting of a rule changed.

Scenario tests that build many subjects through the real services (the permission matrix makes a
fresh standard request of the same applicant for every role) would run into the auto-approval
caps of ``data/approval_tiers.yaml`` after a few requests; the caps have their own tests
(tests/integration/test_rules_gaming.py). :func:`auto_caps_lifted` points the settings at a copy
of ``data/`` whose caps are out of reach, and changes nothing else.
"""

from __future__ import annotations

import shutil

import pytest
import yaml

from core.config import PROJECT_ROOT

LIFTED = 10**6


@pytest.fixture(scope="session")
def _lifted_data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data-caps-lifted")
    shutil.copytree(PROJECT_ROOT / "data", folder, dirs_exist_ok=True)
    tiers = folder / "approval_tiers.yaml"
    raw = yaml.safe_load(tiers.read_text(encoding="utf-8"))
    raw["settings"].update(auto_cap_user_gpus=LIFTED, auto_cap_department_gpus=LIFTED)
    tiers.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture
def auto_caps_lifted(_lifted_data_dir, monkeypatch):
    """The real data files, with the auto-approval caps out of reach."""
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(_lifted_data_dir))
    yield _lifted_data_dir
