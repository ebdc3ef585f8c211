"""Adjustment record (调整记录): every adjustment — automatic or manual — with before/after, who, when, why."""

import streamlit as st

from ui.adjustments_view import filters, records, table
from ui.errors import guarded
from ui.i18n import t

st.title(t("adjust.title"))
st.caption(t("adjust.caption"))
st.caption(t("records.sources"))
with guarded():
    table(records(filters()))
