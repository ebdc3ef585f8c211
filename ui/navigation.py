"""Which pages exist and which menu (role group) sees which.

Page scripts live in ``app_pages/``, not ``pages/``: with a folder named ``pages`` beside
``app.py``, Streamlit serves a deep link's first visit after a restart straight from that folder,
skipping app.py (identity, menus, language). tests/browser/test_smoke.py pins this.

The browser smoke test and the AppTest suite read this table too, so a new page is added here
once and is then covered by them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    """A page of the app: its script, URL path, title key in the catalogs and icon."""

    key: str
    script: str
    url_path: str
    title_key: str
    icon: str


PAGES: dict[str, PageSpec] = {
    spec.key: spec
    for spec in (
        PageSpec("home", "app_pages/home.py", "home", "nav.home", ":material/home:"),
        PageSpec("estimate", "app_pages/estimate.py", "estimate", "nav.estimate", ":material/calculate:"),
        PageSpec("estimates", "app_pages/saved_estimates.py", "saved-estimates", "nav.saved_estimates", ":material/bookmarks:"),
        PageSpec("calibration", "app_pages/calibration.py", "calibration", "nav.calibration", ":material/tune:"),
        PageSpec("catalog", "app_pages/hardware_catalog.py", "hardware", "nav.catalog", ":material/memory:"),
        PageSpec("settings", "app_pages/settings.py", "settings", "nav.settings", ":material/settings:"),
    )
}

# Menu sections per role group: (section title key, page keys).
MENUS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "user": (
        ("nav.section.start", ("home",)),
        ("nav.section.estimate", ("estimate", "estimates", "catalog")),
    ),
    "ops": (
        ("nav.section.start", ("home",)),
        ("nav.section.estimate", ("estimate", "estimates", "catalog")),
        ("nav.section.ops", ("calibration",)),
    ),
    "executive": (
        ("nav.section.start", ("home",)),
        ("nav.section.estimate", ("catalog",)),
    ),
    "admin": (
        ("nav.section.start", ("home",)),
        ("nav.section.estimate", ("estimate", "estimates", "catalog")),
        ("nav.section.ops", ("calibration",)),
        ("nav.section.admin", ("settings",)),
    ),
}


def pages_for(menu: str) -> list[PageSpec]:
    """All pages a role group sees, in menu order."""
    return [PAGES[key] for _, keys in MENUS[menu] for key in keys]
