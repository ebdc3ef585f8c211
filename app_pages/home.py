"""Home: what the portal does, which stages are available today and which are still to come."""

import streamlit as st

from ui.i18n import t

st.title(t("home.title"))
st.markdown(t("home.intro"))

STAGES = (
    ("home.stage.estimate", "available"),
    ("home.stage.apply", "available"),
    ("home.stage.adjust", "available"),
    ("home.stage.transparency", "available"),
    ("home.stage.reclaim", "available"),
)
for key, status in STAGES:
    with st.container(border=True):
        st.markdown(f"**{t(key + '.name')}** — {t('home.status.' + status)}")
        st.caption(t(key + ".text"))
