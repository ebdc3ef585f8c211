"""The inbox: my notices, newest first, filtered by kind and unread; opening one marks it read, a notice
about a request links to it, and an approval that no longer waits for me says so. A notice is in
the inbox from the moment it is queued (:func:`core.notifications.outbox.enqueue`), whether or not
e-mail is configured."""

from __future__ import annotations

import streamlit as st

from core.lifecycle.labels import step_status_name
from core.notifications import inbox, links
from core.notifications.templates import KINDS, OTHER_KIND
from ui.builtin_text import choose
from ui.context import ctx, me
from ui.i18n import current_lang, t
from ui.names import person
from ui.navigation import PAGES, sections_for
from ui.times import when

KIND_ICON = {"approval": ":material/approval:", "submitted": ":material/outgoing_mail:",
             "decision": ":material/gavel:", "allocation": ":material/dns:", "expiry": ":material/event_busy:",
             "warning": ":material/warning:", "reclaim": ":material/recycling:", "report": ":material/summarize:",
             "support": ":material/support:", OTHER_KIND: ":material/mail:"}
ALL = "all"  # the kind picker's "every kind" (a value, not None: nothing to clear)
OPENED = "_inbox_opened"  # the notice opened last in this session: it stays open once marked read


def inbox_filters() -> tuple[str | None, bool]:
    """The unread count, the kind picker (kinds I have notices of, with counts) and the unread switch."""
    counts = inbox.kind_counts(sessions=ctx().sessions, actor=me())
    st.caption(t("inbox.unread", count=sum(c["unread"] for c in counts.values())))
    labels = {ALL: t("inbox.filter.all", count=sum(c["total"] for c in counts.values()))} | {
        kind: t("inbox.filter.option", kind=t(f"inbox.kind.{kind}"), count=counts[kind]["total"])
        for kind in (*KINDS, OTHER_KIND) if kind in counts}
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    kind = left.selectbox(t("inbox.filter.kind"), list(labels), format_func=labels.get, placeholder=choose(),
                          key="inbox_kind")
    unread_only = right.toggle(t("inbox.filter.unread"), key="inbox_unread")
    return (None if kind == ALL else kind), unread_only


def _opened(inbox_id: int, key: str) -> None:
    """Expander callback: opening a notice marks it read (one transaction); closing it forgets it."""
    if st.session_state.get(key):
        inbox.mark_read(sessions=ctx().sessions, actor=me(), inbox_id=inbox_id, lang=current_lang())
        st.session_state[OPENED] = inbox_id
    elif st.session_state.get(OPENED) == inbox_id:
        del st.session_state[OPENED]


def _mark_all(kind: str | None) -> None:
    count = inbox.mark_all_read(sessions=ctx().sessions, actor=me(), kind=kind)
    st.toast(t("inbox.marked_all", count=count), icon=":material/done_all:")


def no_action_text(action: dict) -> str:
    """Why an approval notice no longer asks for anything, in words."""
    lang = current_lang()
    status = t(f"status.{action['status']}") if action.get("status") else "-"
    if action["why"] == "decided":
        return t("inbox.no_action.decided", who=person(action["by"]),
                 outcome=step_status_name(action["outcome"], lang), status=status)
    return t(f"inbox.no_action.{action['why']}", status=status)


def _request_link(notice: dict) -> None:
    """A link that opens the notice's request: in Approvals while my approval waits, else in My requests."""
    action = notice["action"]
    page_key = links.request_page(notice["template"], action_needed=action is None or action["needed"])
    if page_key not in {spec.key for _, specs in sections_for(me().role) for spec in specs}:
        return  # a role without that page (the committee has no My requests): the text names the number
    spec = PAGES[page_key]
    st.page_link(spec.script, label=t("inbox.open_request", number=notice["number"], page=t(spec.title_key)),
                 icon=":material/open_in_new:",
                 query_params={**st.query_params.to_dict(), links.REQUEST_PARAM: str(notice["request_id"])})


def _label(notice: dict) -> str:
    action = notice["action"]
    done = f" · {t('inbox.no_action')}" if action is not None and not action["needed"] else ""
    return ("● " if notice["unread"] else "") + notice["subject"] + f" · {when(notice['created_at'])}" + done


def inbox_list(kind: str | None, unread_only: bool) -> None:
    """My notices of ``kind`` (all kinds: None), each an expander that marks it read when opened."""
    notices = inbox.list_inbox(sessions=ctx().sessions, actor=me(), lang=current_lang(), kind=kind,
                               unread_only=unread_only)
    if not notices:
        filtered = kind is not None or unread_only
        st.info(t("inbox.none_match" if filtered else "inbox.empty"), icon=":material/inbox:")
        return
    if any(n["unread"] for n in notices):
        st.button(t("inbox.mark_all_read"), icon=":material/done_all:", key="inbox_mark_all", on_click=_mark_all,
                  args=(kind,))
    opened = st.session_state.get(OPENED)
    for n in notices:
        key = f"notice_{n['id']}"
        with st.expander(_label(n), expanded=n["id"] == opened, key=key, icon=KIND_ICON[n["kind"]],
                         on_change=_opened, args=(n["id"], key)):
            action = n["action"]
            if action is not None:
                if action["needed"]:
                    st.warning(t("inbox.action_needed"), icon=":material/pending_actions:")
                else:
                    st.success(no_action_text(action), icon=":material/task_alt:")
            st.text(n["body"])
            if n["request_id"] is not None:
                _request_link(n)
