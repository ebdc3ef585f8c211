"""Notices: a transactional outbox, e-mail delivery over SMTP, and the in-app inbox.

- :func:`outbox.enqueue` queues a notice inside the caller's transaction (once per dedup key);
- :func:`sender.deliver_pending` delivers due notices (``python -m core notify send``);
- :mod:`transport` holds the SMTP adapter, the in-app-only transport and a recording fake;
- :mod:`inbox` lets a person list, read and mark their own notices;
- :mod:`templates` renders subject and body per template and language from the catalogs.
"""

from core.notifications.inbox import get_notice, list_inbox, mark_read, unread_count
from core.notifications.outbox import enqueue
from core.notifications.sender import DeliveryReport, deliver_pending
from core.notifications.templates import TEMPLATES, RenderedNotice, TemplateError, render
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
    "TEMPLATES", "DeliveryError", "DeliveryReport", "InboxOnlyTransport", "OutgoingMail", "RecordingTransport",
    "RenderedNotice", "SmtpTransport", "TemplateError", "deliver_pending", "enqueue", "get_notice", "list_inbox",
    "make_transport", "mark_read", "render", "smtp_settings", "unread_count",
]
