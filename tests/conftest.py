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

# the "fuzz cases" and "permission matrix" sections of the terminal summary (pytest reads pytest_plugins only in the root conftest)
pytest_plugins = ("tests.support.run_counts",)


def pytest_configure(config: pytest.Config) -> None:
    """Freeze the clock before any test module is imported (module-level forms use it)."""
    traveller = time_machine.travel(clock.frozen_instant(), tick=True)
    traveller.start()
    config.stash[_TRAVELLER] = traveller


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_TRAVELLER, None)
    if traveller is not None:
        traveller.stop()


# The browser tests (a menu walk takes 20-45 s, a flow 10-25 s; most other tests well under a second)
# are shared by this many pytest-xdist workers, each with one Streamlit server and one Chromium.
BROWSER_WORKERS = 2


def _first_shares(total: int, workers: int) -> list[int]:
    """Where each worker's first share of the run begins under ``--dist worksteal`` (pytest-xdist
    3.8 deals the pending tests in contiguous shares, ``len(pending) // workers_left`` each)."""
    starts, begun = [], 0
    for k in range(workers):
        starts.append(begun)
        begun += (total - begun) // (workers - k)
    return starts


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The order of the run, for the Makefile's ``--dist worksteal``: the browser tests, longest
    first, dealt alternately to :data:`BROWSER_WORKERS` groups, each group at the start of a
    worker's first share (``PYTEST_XDIST_WORKER_COUNT``), the other tests in file order around them.
    Each browser worker starts on its group at once and the others steal the rest. In file order
    one worker was dealt every browser test behind 700 AppTests and ran them alone for the last two
    minutes of the run (495 s); with single tests dealt to any worker (``--dist load
    --maxschedchunk 1``) three Streamlit servers and every module fixture built up to three times
    took more CPU than they saved (525 s); in this order, with seven more browser tests, 489 s (this
    2-core machine, 3 workers). pytest-xdist's ``xdist_group`` cannot do it here: under pytest 9 its
    group suffix no longer reaches the node ids."""
    browser = sorted((i for i in items if i.get_closest_marker("browser") is not None),
                     key=lambda item: item.path.name != "test_pages.py")
    if not browser:
        return
    others = iter([i for i in items if i.get_closest_marker("browser") is None])
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    groups = max(1, min(BROWSER_WORKERS, workers - 1))
    shares = _first_shares(len(items), workers)[1:groups] + [0]
    ordered: list[pytest.Item] = []
    for group, next_share in zip(range(groups), shares):
        ordered += browser[group::groups]
        while len(ordered) < next_share and (item := next(others, None)) is not None:
            ordered.append(item)
    items[:] = ordered + list(others)


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
