"""Settings (admin): the configuration in force, the database revision and the data files."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.views import database_status, settings_markdown

st.title(t("settings.title"))
st.caption(t("settings.caption"))
with guarded():
    st.subheader(t("settings.config"))
    st.markdown(settings_markdown())
    st.subheader(t("settings.database"))
    status = database_status()
    st.metric(t("settings.revision"), status["current"] or "-", help=t("settings.revision_help", head=status["head"]))
