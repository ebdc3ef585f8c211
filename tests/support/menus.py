"""The distinct menus of the app: personas whose roles see the same list of pages share one.

Used by the browser page test (tests/browser/test_pages.py) and the browser benchmark
(bench/browser.py), which both walk every page of every menu as its first persona.
"""

from __future__ import annotations

from core.identity import ROLE_MENU, load_personas
from ui.navigation import PageSpec, pages_for


def distinct_menus() -> list[tuple[tuple[str, ...], list[PageSpec]]]:
    """(personas sharing the menu, its pages) for each distinct page list, in persona order."""
    menus: dict[tuple[str, ...], list[str]] = {}
    for persona in load_personas():
        keys = tuple(spec.key for spec in pages_for(ROLE_MENU[persona.role], persona.role))
        menus.setdefault(keys, []).append(persona.id)
    pages = {}
    for persona in load_personas():
        pages.setdefault(persona.id, pages_for(ROLE_MENU[persona.role], persona.role))
    return [(tuple(ids), pages[ids[0]]) for ids in menus.values()]
