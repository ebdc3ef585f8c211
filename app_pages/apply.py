"""Apply (资源申请): the demand intake form and resource application, checked before it is sent."""

import streamlit as st

from core.identity import may_apply
from ui.apply_form import actions, ensure_state, widgets
from ui.apply_outcome import outcome
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
    actions()
    outcome()
    emergency_box()
