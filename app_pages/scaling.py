"""Autoscaling policies (扩缩容策略): the dual-threshold policy form, its HPA and KEDA manifests, and a
replay of last week."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.scaling_view import feedback, manifests, pick_policy, policies, policy_form, replay

st.title(t("scaling.title"))
st.caption(t("scaling.caption"))
with guarded():
    feedback()
    policy = policy_form(pick_policy(policies()))
    st.subheader(t("scaling.manifests"))
    with guarded():
        manifests(policy)
    st.subheader(t("scaling.replay"))
    with guarded():
        replay(policy)
