"""Usage (使用情况): the training usage sheet of a run (namespace and window → curves, per-GPU figures,
bottleneck hints) and the inference usage sheet of a month — within the reader's scope, which the
page names (their department's, their province's or everything)."""

import streamlit as st

from ui.errors import guarded
from ui.i18n import t
from ui.usage_view import (curves, hints, inference_sheet, inference_table, per_gpu, pick_month, pick_run, serving_notes,
                           summary, training_runs, training_sheet, whose)

st.title(t("usage.title"))
st.caption(t("usage.caption"))
with guarded():
    st.info(whose(), icon=":material/visibility:")

st.subheader(t("usage.training_title"))
with guarded():
    runs = training_runs()
    if runs.height == 0:
        st.info(t("usage.no_runs"), icon=":material/query_stats:")
    else:
        chosen = pick_run(runs)
        if chosen is not None:
            sheet = training_sheet(*chosen)
            if sheet.series.height == 0:
                st.info(t("usage.no_series"), icon=":material/query_stats:")
            else:
                summary(sheet)
                hints(sheet)
                curves(sheet)
                per_gpu(sheet)

st.subheader(t("usage.inference_title"))
with guarded():
    month = pick_month()
    sheet = inference_sheet(month)
    if sheet.rows.height == 0:
        st.info(t("usage.no_services"), icon=":material/query_stats:")
    else:
        st.caption(t("usage.inference_caption", first=sheet.first.isoformat(), last=sheet.last.isoformat(),
                     services=sheet.rows.height))
        st.dataframe(inference_table(sheet), hide_index=True, width="stretch")
        serving_notes(sheet)
