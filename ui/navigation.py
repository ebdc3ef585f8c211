"""Which pages exist and which menu (role group) sees which.

Page scripts live in ``app_pages/``, not ``pages/``: with a folder named ``pages`` beside
``app.py``, Streamlit serves a deep link's first visit after a restart straight from that folder,
skipping app.py (identity, menus, language). tests/browser/test_smoke.py pins this.

The browser smoke test and the AppTest suite read this table too, so a new page is added here
once and is then covered by them.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.identity import OPS_ROLES, ROLE_MENU


@dataclass(frozen=True)
class PageSpec:
    """A page of the app: its script, URL path, title key in the catalogs and icon."""

    key: str
    script: str
    url_path: str
    title_key: str
    icon: str
    roles: frozenset[str] | None = None  # None: every role of the menu; else only these roles


PAGES: dict[str, PageSpec] = {
    spec.key: spec
    for spec in (
        PageSpec("home", "app_pages/home.py", "home", "nav.home", ":material/home:"),
        PageSpec("estimate", "app_pages/estimate.py", "estimate", "nav.estimate", ":material/calculate:"),
        PageSpec("estimates", "app_pages/saved_estimates.py", "saved-estimates", "nav.saved_estimates", ":material/bookmarks:"),
        PageSpec("calibration", "app_pages/calibration.py", "calibration", "nav.calibration", ":material/tune:", OPS_ROLES),
        PageSpec("catalog", "app_pages/hardware_catalog.py", "hardware", "nav.catalog", ":material/memory:"),
        PageSpec("settings", "app_pages/settings.py", "settings", "nav.settings", ":material/settings:"),
        PageSpec("apply", "app_pages/apply.py", "apply", "nav.apply", ":material/edit_document:"),
        PageSpec("my_requests", "app_pages/my_requests.py", "my-requests", "nav.my_requests", ":material/list_alt:"),
        PageSpec("approvals", "app_pages/approvals.py", "approvals", "nav.approvals", ":material/approval:"),
        PageSpec("inbox", "app_pages/inbox.py", "inbox", "nav.inbox", ":material/mail:"),
        PageSpec("allocations", "app_pages/allocations.py", "allocations", "nav.allocations", ":material/dns:"),
        PageSpec("green_channel", "app_pages/green_channel.py", "green-channel", "nav.green_channel", ":material/emergency:",
                 OPS_ROLES),
        PageSpec("queue", "app_pages/queue.py", "queue", "nav.queue", ":material/format_list_numbered:", OPS_ROLES),
        PageSpec("scaling", "app_pages/scaling.py", "scaling", "nav.scaling", ":material/trending_up:", OPS_ROLES),
        PageSpec("adjustments", "app_pages/adjustments.py", "adjustments", "nav.adjustments", ":material/history:", OPS_ROLES),
        PageSpec("pools", "app_pages/pools.py", "pools", "nav.pools", ":material/water:", OPS_ROLES),
        PageSpec("support", "app_pages/support.py", "support", "nav.support", ":material/support:", OPS_ROLES),
        PageSpec("usage", "app_pages/usage.py", "usage", "nav.usage", ":material/monitoring:",
                 OPS_ROLES | {"applicant", "dept_head"}),
        PageSpec("board", "app_pages/board.py", "board", "nav.board", ":material/leaderboard:"),
        PageSpec("report_builder", "app_pages/report_builder.py", "report-builder", "nav.report_builder",
                 ":material/summarize:", OPS_ROLES),
        PageSpec("warnings", "app_pages/warnings.py", "warnings", "nav.warnings", ":material/warning:",
                 OPS_ROLES | {"applicant", "dept_head"}),
        PageSpec("reclaim", "app_pages/reclaim.py", "reclaim", "nav.reclaim", ":material/recycling:",
                 OPS_ROLES | {"applicant", "dept_head"}),
    )
}

# Menu sections per role group: (section title key, page keys).
MENUS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "user": (
        ("nav.section.start", ("home", "inbox", "board")),
        ("nav.section.estimate", ("estimate", "estimates", "catalog")),
        ("nav.section.apply", ("apply", "my_requests", "allocations", "usage", "warnings", "reclaim")),
    ),
    "ops": (
        ("nav.section.start", ("home", "inbox", "board")),
        ("nav.section.estimate", ("estimate", "estimates", "catalog")),
        ("nav.section.apply", ("apply", "my_requests", "allocations")),
        ("nav.section.ops", ("approvals", "green_channel", "calibration", "queue", "scaling", "adjustments", "pools", "support", "usage", "report_builder", "warnings", "reclaim")),
    ),
    "executive": (
        ("nav.section.start", ("home", "inbox", "board")),
        ("nav.section.estimate", ("catalog",)),
        # executives and the committee read published material (the board) and decide their steps
        ("nav.section.ops", ("approvals",)),
    ),
    "admin": (
        ("nav.section.start", ("home", "inbox", "board")),
        ("nav.section.estimate", ("estimate", "estimates", "catalog")),
        ("nav.section.apply", ("apply", "my_requests", "allocations")),
        ("nav.section.ops", ("approvals", "green_channel", "calibration", "queue", "scaling", "adjustments", "pools", "support", "usage", "report_builder", "warnings", "reclaim")),
        ("nav.section.admin", ("settings",)),
    ),
}


def visible(spec: PageSpec, role: str | None) -> bool:
    """True when ``role`` may open the page (services check permissions again)."""
    return spec.roles is None or role is None or role in spec.roles


def sections_for(role: str) -> list[tuple[str, list[PageSpec]]]:
    """The menu of ``role``: (section title key, pages), empty sections left out."""
    menu = ROLE_MENU.get(role, "user")
    out = []
    for title_key, keys in MENUS[menu]:
        pages = [PAGES[k] for k in keys if visible(PAGES[k], role)]
        if pages:
            out.append((title_key, pages))
    return out


def pages_for(menu: str, role: str | None = None) -> list[PageSpec]:
    """All pages a role group (and, if given, the role itself) sees, in menu order."""
    return [PAGES[key] for _, keys in MENUS[menu] for key in keys if visible(PAGES[key], role)]


# Where a session starts, by menu: the page of the daily work (ops: the approval queue).
LANDING: dict[str, str] = {"user": "home", "ops": "approvals", "executive": "board", "admin": "home"}


def landing_page(role: str) -> str:
    """The key of the page a session of ``role`` opens on."""
    return LANDING.get(ROLE_MENU.get(role, "user"), "home")


def sidebar_menu(role: str, pages: dict, query: dict[str, str]) -> None:
    """The role's menu in the sidebar, every page visible (no "more"), grouped by section.

    ``pages`` maps page keys to the ``st.Page`` objects given to ``st.navigation``; every link
    carries ``query`` (the language, and the persona in demo mode), so who is acting and in which
    language survive a page change, a reload and a link opened in a new tab.
    """
    import streamlit as st

    from ui.i18n import t

    for title_key, specs in sections_for(role):
        st.sidebar.caption(t(title_key))
        for spec in specs:
            st.sidebar.page_link(pages[spec.key], label=t(spec.title_key), icon=spec.icon, query_params=query)
