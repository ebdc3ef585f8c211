"""Calibration (自学习): record what finished jobs really took; see the corrections fitted from them."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.saved_estimates import corrections_table, outcome_form

st.title(t("calibration.title"))
st.caption(t("calibration.caption"))
with guarded():
    st.subheader(t("calibration.record"))
    outcome_form()
    st.subheader(t("calibration.table"))
    table = corrections_table()
    if table is None:
        st.info(t("calibration.empty"), icon=":material/tune:")
    else:
        st.dataframe(table, hide_index=True, width="stretch")
