"""Apply (资源申请): the demand intake form and resource application, checked before it is sent."""

import streamlit as st

from core.identity import may_apply
from ui.apply_form import ensure_state, outcome, run_action, widgets
from ui.context import me
from ui.errors import guarded
from ui.green_channel_view import emergency_box
from ui.i18n import t

st.title(t("apply.title"))
st.caption(t("apply.caption"))
if not may_apply(me()):
    st.info(t("access.no_department"))
    st.stop()
with guarded():
    ensure_state()
    widgets()
    c1, c2, c3, c4 = st.columns([1, 1, 2, 1])
    c1.button(t("apply.check"), on_click=run_action, args=("check",))
    c2.button(t("apply.save_draft"), on_click=run_action, args=("draft",))
    c3.checkbox(t("apply.queue_if_short"), key="ap_queue", help=t("apply.queue_help"))
    c4.button(t("apply.submit"), type="primary", on_click=run_action, args=("submit",))
    outcome()
    emergency_box()
