"""A real SMTP server on loopback (aiosmtpd) that records what it accepts: the ``smtp`` fixture."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest

from core.notifications import SmtpTransport
from tests.conftest import missing_service

try:
    from aiosmtpd.controller import Controller
except ImportError:  # pragma: no cover - CI installs it (requirements-dev.txt)
    Controller = None


SENDER = "portal@computeloop.example"


class RecordingHandler:
    """aiosmtpd handler that keeps every accepted message, or answers ``reply`` to DATA instead."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.reply: str | None = None
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001 - aiosmtpd hook signature
        if self.reply:
            return self.reply
        with self.lock:
            self.raw.append(envelope.original_content or envelope.content)
        return "250 OK"

    @property
    def messages(self):
        return [message_from_bytes(raw, policy=policy.default) for raw in self.raw]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1 and a transport pointed at it."""
    if Controller is None:
        missing_service("aiosmtpd (SMTP test server; pip install aiosmtpd==1.4.6)")
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield SimpleNamespace(handler=handler, port=port,
                          transport=SmtpTransport("127.0.0.1", port, SENDER, starttls=False, timeout=5))
    controller.stop()
