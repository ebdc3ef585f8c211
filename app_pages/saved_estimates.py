"""Saved estimates: the estimates you may see, newest first; open one to read or reuse it."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.saved_estimates import estimate_detail, estimates_table, reopen_button

st.title(t("saved.title"))
st.caption(t("saved.caption"))
with guarded():
    rows = estimates_table()
    if rows is None:
        st.info(t("saved.empty"), icon=":material/bookmarks:")
    else:
        chosen = st.dataframe(rows, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                              key="saved_table")
        selected = chosen.selection.rows
        if selected:
            estimate_id = int(rows.iloc[selected[0]][t("saved.col.id")])
            estimate_detail(estimate_id)
            reopen_button(estimate_id)
        else:
            st.caption(t("saved.select_hint"))
