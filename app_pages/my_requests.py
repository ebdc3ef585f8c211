"""My requests (我的申请): status of every application, its route, steps, timeline; resume or cancel."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.requests_view import (feedback, my_requests, owner_actions, request_detail, requests_frame, select_request,
                              training_results)

st.title(t("myreq.title"))
st.caption(t("myreq.caption"))
with guarded():
    feedback()
    rows = my_requests()
    if not rows:
        st.info(t("myreq.empty"), icon=":material/inbox:")
    else:
        chosen = select_request(rows, requests_frame(rows), key="myreq_table")
        if chosen is None:
            st.caption(t("req.pick_hint"))
        else:
            view = request_detail(chosen)
            owner_actions(view)
            training_results(view)
