"""Hardware catalog: every GPU model the calculator knows, its figures and their sources."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.views import catalog_table

st.title(t("catalog.title"))
st.caption(t("catalog.caption"))
with guarded():
    table = catalog_table()
    st.dataframe(table, hide_index=True, width="stretch")
    st.info(t("catalog.flags_note"), icon=":material/info:")
