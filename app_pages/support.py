"""Support requests (紧急资源支援请求): provincial ops ask HQ for GPUs; HQ ops see every pool's
headroom with the suggested donor and approve a transfer for a window, or reject it."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.support_view import decide, feedback, raise_form, requests_table

st.title(t("support.title"))
st.caption(t("support.caption"))
with guarded():
    feedback()
    raise_form(prefill_pool=st.query_params.get("pool"))
    st.divider()
    decide(requests_table())
