"""Reclaim (资源回收): the owner's return / extension section, expiring allocations, extension
requests, reclaim candidates, reclaim records (dry run → approval → execute) and, for ops, the
monthly L1 pool review. A section switcher renders (and loads) only the chosen section."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.reclaim_view import (
    candidates, expiring, extensions, feedback, owner_section, pool_review_section, records, section_picker,
)

st.title(t("reclaim.title"))
st.caption(t("reclaim.caption"))
with guarded():
    feedback()
    section = section_picker()
    if section == "own":
        owner_section()
    elif section == "expiring":
        expiring()
    elif section == "extensions":
        extensions()
    elif section == "candidates":
        candidates()
    elif section == "records":
        records()
    elif section == "pool_review":
        pool_review_section()
