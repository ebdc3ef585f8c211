"""Board (晾晒榜单): the published monthly reports for everyone — big numbers, simple charts, red and
black lists, every version readable, downloads."""

import streamlit as st

from ui.board_view import choose_report, report_list, show_report
from ui.errors import guarded
from ui.i18n import t

st.title(t("board.title"))
st.caption(t("board.caption"))
with guarded():
    rows = [r for r in report_list() if r["status"] == "published"]
    if not rows:
        st.info(t("board.empty"), icon=":material/campaign:")
    else:
        view = choose_report(rows, key="board")
        if view is not None:
            show_report(view, key="board")
