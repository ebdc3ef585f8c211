"""``python -m core notify send``: deliver the pending notices once and print what happened."""

from __future__ import annotations

import argparse

from core.cli import add_json_flag, emit
from core.cli.inputs import whole


def register(groups: argparse._SubParsersAction) -> None:
    """Add the ``notify`` group."""
    notify = groups.add_parser("notify", help="notices: e-mail (SMTP) and in-app inbox",
                               description="Notices: deliver the outbox by e-mail and to the in-app inbox.")
    sub = notify.add_subparsers(dest="command", required=True, metavar="COMMAND")
    send = sub.add_parser(
        "send", help="deliver pending notices once (run it every minute from cron or a job)",
        description="Deliver the notices that are due once. Without COMPUTELOOP_SMTP_HOST they go to the "
                    "in-app inbox only and the e-mails stay pending. Exits 0 even when some were refused "
                    "(they are retried later); see the report.")
    send.add_argument("--limit", type=whole("notify_limit"), default=100, help="most notices to handle in this run (default 100)")
    add_json_flag(send)
    send.set_defaults(handler=_send)


def _send(args: argparse.Namespace) -> int:
    from core.context import build
    from core.i18n import translate
    from core.notifications.sender import deliver_pending
    from core.notifications.transport import make_transport

    transport = make_transport()
    ctx = build()
    try:
        report = deliver_pending(sessions=ctx.sessions, transport=transport, limit=args.limit)
    finally:
        ctx.engine.dispose()
    payload = {"transport": repr(transport) if transport.delivers_email else "inbox-only", **report.to_dict()}

    def text() -> str:
        lines = [translate("notify.cli.report", args.lang, sent=report.sent, retried=report.retried,
                           failed=report.failed, inbox_only=report.inbox_only, skipped=report.skipped)]
        lines += [f"  #{e['outbox_id']} (attempt {e['attempts']}): {e['error']}" for e in report.errors]
        return "\n".join(lines)

    emit(args, payload, text)
    return 0
