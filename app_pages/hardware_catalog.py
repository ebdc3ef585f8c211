"""Hardware catalog: every GPU model the calculator knows, its figures and their sources."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.sources import technical_sources
from ui.views import catalog_table

st.title(t("catalog.title"))
st.caption(t("uitext.catalog.caption"))
technical_sources([t("uitext.catalog.source", file="data/gpus.yaml")])
with guarded():
    table = catalog_table()
    st.dataframe(table, hide_index=True, width="stretch")
    st.info(t("catalog.flags_note"), icon=":material/info:")
