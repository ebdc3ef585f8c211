"""The page check sees a page whose service raises.

A second Streamlit server runs the real app.py with one service replaced by one that raises
(``core.reports.service.list_reports``, which the board reads), put in by a ``sitecustomize``
module on that process's PYTHONPATH (tests/support/browser_faults.py); the app itself knows
nothing of it. ``check_page`` must report the board's unexpected-error message, naming the
exception, in both languages, and report nothing on a page that does not use the service.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from core.config import PROJECT_ROOT
from core.i18n import LANGS
from tests.support.browser_app import tail
from tests.support.browser_checks import check_page, open_page
from tests.support.browser_faults import InjectedFault, shim_folder
from ui.navigation import PAGES

pytestmark = [pytest.mark.browser, pytest.mark.live]

FAULT = "core.reports.service.list_reports"
PERSONA = "zhang.wei"


@pytest.fixture(scope="module")
def faulty_app(chromium_browser, app_env, serve, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(base URL, log folder) of the demo app served with :data:`FAULT` raising."""
    folder = tmp_path_factory.mktemp("faulty-app")
    env = dict(app_env)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(shim_folder(folder / "shim", FAULT)), str(PROJECT_ROOT)]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    with serve(env, folder / "logs") as base:
        yield base, folder / "logs"


@pytest.mark.parametrize("lang", LANGS)
def test_a_page_whose_service_raises_fails_the_check(new_tab, faulty_app, error_patterns, lang: str) -> None:
    base, logs = faulty_app
    tab = new_tab(lang)
    board = PAGES["board"]
    open_page(tab, base, board, PERSONA, lang)
    findings, _ = check_page(tab, board, lang, patterns=error_patterns, widths=(), text_checks=False)
    unexpected = [f for f in findings if f.check == "unexpected error"]
    assert unexpected and InjectedFault.__name__ in unexpected[0].detail, (
        f"the board ({lang}) with {FAULT} raising was not reported as an unexpected error: {findings}\n"
        f"app stderr:\n{tail(logs / 'streamlit.err')}")

    # The same check on a page that does not read the service finds nothing: it reports the fault,
    # not the server.
    catalog = PAGES["catalog"]
    open_page(tab, base, catalog, PERSONA, lang)
    findings, _ = check_page(tab, catalog, lang, patterns=error_patterns, widths=(), text_checks=False)
    assert not findings, f"the hardware catalog ({lang}) on the faulty server: {findings}"
