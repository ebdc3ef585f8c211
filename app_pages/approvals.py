"""Approvals (审批): the queue waiting for my role with its claim timer, the feasibility checklist and
the decision."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.requests_view import (feedback, approval_queue, decision_form, feasibility_checklist, request_detail, requests_frame,
                              select_request)

st.title(t("approvals.title"))
st.caption(t("approvals.caption"))
with guarded():
    feedback()
    rows = approval_queue()
    if not rows:
        st.info(t("approvals.empty"), icon=":material/task_alt:")
    else:
        chosen = select_request(rows, requests_frame(rows, with_timer=True), key="approvals_table")
        if chosen is None:
            st.caption(t("req.pick_hint"))
        else:
            view = request_detail(chosen)
            feasibility_checklist(chosen)
            decision_form(view)
