"""Estimate (需求测算): size a training job or an inference service before applying."""

import streamlit as st

from ui.i18n import t
from ui.inference_estimate import llm_section, loadtest_form, loadtest_result
from ui.training_estimate import recommendation_section, training_form, training_result

st.title(t("estimate.title"))
st.caption(t("estimate.caption"))

training_tab, inference_tab = st.tabs([t("estimate.tab.training"), t("estimate.tab.inference")])
with training_tab:
    training_form()
    training_result()
    st.divider()
    recommendation_section()
with inference_tab:
    loadtest_form()
    loadtest_result()
    st.divider()
    llm_section()
