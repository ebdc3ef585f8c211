"""Warnings (预警): monthly yellow/orange warnings with their evidence, coverage and triage."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.warnings_view import actions, evidence, feedback, filters, pick, warnings_frame, warnings_list

st.title(t("warn.title"))
st.caption(t("warn.caption"))
with guarded():
    feedback()
    chosen_filters = filters()
    rows = warnings_list(**chosen_filters)
    if not rows:
        st.info(t("warn.empty"), icon=":material/notifications_off:")
    else:
        st.dataframe(warnings_frame(rows), hide_index=True, width="stretch")
        chosen = pick(rows)
        if chosen is not None:
            actions(evidence(chosen))
