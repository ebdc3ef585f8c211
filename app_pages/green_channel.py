"""Green channel (绿色通道): the emergency approver's desk and the post-emergency reviews."""

import streamlit as st

from ui.builtin_text import choose
from ui.errors import guarded
from ui.green_channel_view import feedback, pending_emergencies, plan_and_decide, reviews
from ui.i18n import t

st.title(t("green.title"))
st.caption(t("green.caption"))
with guarded():
    feedback()
    rows = pending_emergencies()
    if not rows:
        st.info(t("green.none_pending"), icon=":material/emergency:")
    else:
        labels = {r["id"]: f"{r['number']} · {r['pool']} · {r['requested_gpus']} GPU" for r in rows}
        chosen = st.selectbox(t("green.pick"), list(labels), format_func=labels.get,
                              placeholder=choose(), key="gc_pick")
        plan_and_decide(chosen)
    st.divider()
    st.subheader(t("green.reviews"))
    reviews()
