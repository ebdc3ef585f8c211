"""Inbox (消息): the notices sent to me — confirmations, decisions, allocation sheets."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.inbox_view import inbox_list

st.title(t("inbox.title"))
st.caption(t("inbox.caption"))
with guarded():
    inbox_list()
