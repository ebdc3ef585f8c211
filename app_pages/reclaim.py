"""Reclaim (资源回收): expiring allocations, extension requests, reclaim candidates, reclaim records
(dry run → approval → execute) and the owner's return / extension section."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.reclaim_view import candidates, expiring, extensions, feedback, is_ops, owner_section, records

st.title(t("reclaim.title"))
st.caption(t("reclaim.caption"))
with guarded():
    feedback()
    tabs = st.tabs([t("reclaim.tab.own"), t("reclaim.tab.expiring"), t("reclaim.tab.extensions"),
                    t("reclaim.tab.candidates"), t("reclaim.tab.records")])
    with tabs[0]:
        owner_section()
    with tabs[1]:
        expiring()
    with tabs[2]:
        extensions()
    with tabs[3]:
        candidates()
    with tabs[4]:
        records()
    _ = is_ops
