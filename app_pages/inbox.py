"""Inbox (站内消息): the notices sent to me — filtered by kind and unread, each opening the request it is about."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.inbox_view import inbox_filters, inbox_list

st.title(t("inbox.title"))
st.caption(t("inbox.caption"))
with guarded():
    kind, unread_only = inbox_filters()
    inbox_list(kind, unread_only)
