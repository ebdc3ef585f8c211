"""Report builder (报告编制, ops): month and scope, preview, draft, publish (de-identified or not),
corrections with a reason, exports, and the analysis report's drill-downs."""

import streamlit as st

from ui.board_view import choose_report, report_list, show_report
from ui.errors import guarded
from ui.i18n import t
from ui.report_builder_view import (analysis_panel, build_actions, feedback, month_and_scope, preview_panel,
                                    publish_or_correct, versions_table)

st.title(t("builder.title"))
st.caption(t("builder.caption"))
with guarded():
    feedback()
    month, scope, deid = month_and_scope()
    # One section at a time: only the chosen one reads and renders its data.
    sections = {"monthly": t("builder.tab_monthly"), "versions": t("builder.tab_versions"),
                "analysis": t("builder.tab_analysis")}
    section = st.segmented_control(t("builder.section"), list(sections), format_func=sections.get,
                                   default="monthly", key="rb_section") or "monthly"
    if section == "monthly":
        build_actions(month, scope, deid)
        preview_panel()
    elif section == "versions":
        rows = report_list()
        if not rows:
            st.info(t("builder.no_reports"), icon=":material/draft:")
        else:
            versions_table(rows)
            view = choose_report(rows, key="rbv")
            if view is not None:
                publish_or_correct(view)
                show_report(view, key="rb_show")
    else:
        analysis_panel(month, scope)
