"""Shared test settings: strict i18n, and the rule that live services fail rather than skip in CI."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("COMPUTELOOP_I18N_STRICT", "1")


def require_live() -> bool:
    """True when a missing live service must fail the run (CI sets COMPUTELOOP_REQUIRE_LIVE=1)."""
    return os.environ.get("COMPUTELOOP_REQUIRE_LIVE") == "1"


def missing_service(what: str) -> None:
    """Fail (CI) or skip (laptop) a test whose outside service is missing."""
    if require_live():
        pytest.fail(f"{what} is required (COMPUTELOOP_REQUIRE_LIVE=1) but missing", pytrace=False)
    pytest.skip(f"{what} not available")


# CI explores a fixed set of hypothesis examples (derandomize), so a run cannot fail by luck;
# local runs keep exploring new examples and find new counterexamples.
if os.environ.get("CI"):
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
    _hypothesis_settings.load_profile("ci")
