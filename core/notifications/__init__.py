"""Notices: a transactional outbox, e-mail delivery over SMTP, and the in-app inbox.

- :func:`outbox.enqueue` queues a notice inside the caller's transaction (once per dedup key);
- :func:`sender.deliver_pending` delivers due notices (``python -m core notify send``);
- :mod:`transport` holds the SMTP adapter, the in-app-only transport and a recording fake;
- :mod:`inbox` lets a person list (by kind, unread), read and mark their own notices;
- :mod:`actions` says whether an "awaiting your approval" notice still needs action;
- :mod:`links` says which page opens the request a notice is about, and its e-mail link;
- :mod:`templates` renders subject and body per template and language from the catalogs.
"""

from core.notifications.inbox import get_notice, kind_counts, list_inbox, mark_all_read, mark_read, unread_count
from core.notifications.outbox import enqueue
from core.notifications.sender import DeliveryReport, deliver_pending
from core.notifications.templates import KINDS, TEMPLATES, RenderedNotice, TemplateError, render
from core.notifications.transport import (
    DeliveryError,
    InboxOnlyTransport,
    OutgoingMail,
    RecordingTransport,
    SmtpTransport,
    make_transport,
    smtp_settings,
)

__all__ = [
    "KINDS", "TEMPLATES", "DeliveryError", "DeliveryReport", "InboxOnlyTransport", "OutgoingMail", "RecordingTransport",
    "RenderedNotice", "SmtpTransport", "TemplateError", "deliver_pending", "enqueue", "get_notice", "kind_counts",
    "list_inbox", "make_transport", "mark_all_read", "mark_read", "render", "smtp_settings", "unread_count",
]
