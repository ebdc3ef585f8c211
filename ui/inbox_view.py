"""The inbox: my notices, newest first, each readable and marked read when opened."""

from __future__ import annotations

import streamlit as st

from core.notifications import inbox
from core.notifications.sender import deliver_pending
from core.notifications.transport import InboxOnlyTransport, smtp_settings
from ui.context import ctx, me
from ui.i18n import current_lang, t


def _materialise_when_inbox_only() -> None:
    """Without an SMTP server the in-app inbox is the only channel: file pending notices there now.

    With SMTP configured, `python -m core notify send` (cron) delivers both e-mail and inbox copies.
    """
    if smtp_settings() is None:
        deliver_pending(sessions=ctx().sessions, transport=InboxOnlyTransport())


def _read(inbox_id: int) -> None:
    inbox.mark_read(sessions=ctx().sessions, actor=me(), inbox_id=inbox_id, lang=current_lang())


def inbox_list() -> None:
    """Every notice of the current identity; unread ones first marked, each expandable."""
    _materialise_when_inbox_only()
    notices = inbox.list_inbox(sessions=ctx().sessions, actor=me(), lang=current_lang())
    if not notices:
        st.info(t("inbox.empty"), icon=":material/inbox:")
        return
    unread = sum(n["unread"] for n in notices)
    st.caption(t("inbox.unread", count=unread))
    for n in notices:
        label = ("● " if n["unread"] else "") + n["subject"] + f" · {n['created_at']:%Y-%m-%d %H:%M}"
        with st.expander(label):
            st.text(n["body"])
            if n["unread"]:
                st.button(t("inbox.mark_read"), key=f"read_{n['id']}", on_click=_read, args=(n["id"],))
