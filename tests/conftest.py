"""Shared test settings: a frozen clock, strict i18n, and the rule that live services fail rather
than skip in CI."""

from __future__ import annotations

import os

import pytest
import time_machine
from cryptography.fernet import Fernet

from tests.support import clock

os.environ.setdefault("COMPUTELOOP_I18N_STRICT", "1")
# The live backend stores the tokens it mints sealed: the test session has a key of its own.
os.environ.setdefault("COMPUTELOOP_TOKEN_KEYS", Fernet.generate_key().decode())

# the "fuzz cases" section of the terminal summary (pytest reads pytest_plugins only in the root conftest)
pytest_plugins = ("tests.support.fuzz_report",)


def pytest_configure(config: pytest.Config) -> None:
    """Freeze the clock before any test module is imported (module-level forms use it)."""
    traveller = time_machine.travel(clock.frozen_instant(), tick=True)
    traveller.start()
    config.stash[_TRAVELLER] = traveller


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_TRAVELLER, None)
    if traveller is not None:
        traveller.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"frozen clock: {clock.frozen_instant().isoformat()} ({clock.SHIFT_ENV}={clock.shift_days()})"


_TRAVELLER = pytest.StashKey[time_machine.travel]()


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
