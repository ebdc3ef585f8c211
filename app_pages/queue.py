"""Queue & adjustment (队列与调整): waiting requests in order with ETA and blocked reasons, the
ordering policy, and the preemption / defragmentation simulations."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.queue_view import feedback, load_queue, policy_explanation, queue_table, simulation_panel

st.title(t("adjq.title"))
st.caption(t("adjq.caption"))
with guarded():
    feedback()
    data = load_queue()
    policy_explanation(data)
    queue_table(data)
    st.divider()
    st.subheader(t("adjq.sim.title"))
    simulation_panel()
