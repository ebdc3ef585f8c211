"""Allocations (资源分配): the allocation sheets — quota, window, access, provisioning and manifests."""

import streamlit as st

from ui.allocations_view import allocations, allocations_frame, pick, sheet
from ui.errors import guarded
from ui.i18n import t

st.title(t("alloc.title"))
st.caption(t("alloc.caption"))
with guarded():
    rows = allocations()
    if not rows:
        st.info(t("alloc.empty"), icon=":material/dns:")
    else:
        st.dataframe(allocations_frame(rows), hide_index=True, width="stretch")
        chosen = pick(rows)
        if chosen is not None:
            sheet(chosen)
