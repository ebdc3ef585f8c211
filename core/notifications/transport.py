"""E-mail transports behind one narrow interface: SMTP, in-app only, and a recording fake.

A transport has one method, ``send(mail)``, which returns only after the receiving server
accepted the message and raises :class:`DeliveryError` otherwise (every smtplib and socket
error is translated here, at the boundary). ``delivers_email`` tells the sender whether the
transport sends e-mail at all.

Settings (environment variables, read when :func:`smtp_settings` is called):
``COMPUTELOOP_SMTP_HOST`` (empty: no e-mail, in-app inbox only), ``COMPUTELOOP_SMTP_PORT``
(587), ``COMPUTELOOP_SMTP_FROM`` (``computeloop@localhost``), ``COMPUTELOOP_SMTP_STARTTLS``
(``1``), ``COMPUTELOOP_SMTP_USER`` and ``COMPUTELOOP_SMTP_PASSWORD`` (empty: no login).
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

from core.errors import ComputeLoopError, InputError

DEFAULT_TIMEOUT_S = 30.0


class DeliveryError(ComputeLoopError):
    """The server did not accept a message. ``permanent`` is True when retrying cannot help."""

    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        self.permanent = permanent
        super().__init__("notify.delivery_failed", detail=detail)


@dataclass(frozen=True)
class OutgoingMail:
    """One rendered notice addressed to one person."""

    to: str
    subject: str
    body: str
    message_id: str


class Transport(Protocol):
    """What the sender needs from an e-mail transport."""

    delivers_email: bool

    def send(self, mail: OutgoingMail) -> None:
        """Return once the server accepted ``mail``; raise :class:`DeliveryError` otherwise."""


def message_id_for(dedup_key: str, sender: str) -> str:
    """A Message-ID derived from the notice's dedup key: a resend carries the same id.

    SMTP has no idempotency key, so this is what lets a receiving system (or a person's mail
    client, which threads by Message-ID) recognise a duplicate after an at-least-once resend.
    The key itself is hashed so ids and names in it do not leak into headers.
    """
    digest = hashlib.sha256(dedup_key.encode("utf-8")).hexdigest()[:40]
    domain = sender.rpartition("@")[2] or "computeloop.invalid"
    return f"<notice.{digest}@{domain}>"


def build_message(mail: OutgoingMail, sender: str) -> EmailMessage:
    """The MIME message of ``mail``: UTF-8 text body, RFC 2047-encoded non-ASCII headers."""
    msg = EmailMessage()  # email.policy.default: encodes a Chinese Subject as =?utf-8?...?=
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = mail.message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders must not answer
    msg.set_content(mail.body, charset="utf-8")
    return msg


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send e-mail."""

    host: str
    port: int = 587
    sender: str = "computeloop@localhost"
    starttls: bool = True
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT_S


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def smtp_settings(env: dict[str, str] | None = None) -> SmtpSettings | None:
    """The SMTP settings from the environment now, or None when no host is configured.

    Raises:
        InputError: ``COMPUTELOOP_SMTP_PORT`` is not a port number.
    """
    env = os.environ if env is None else env
    host = env.get("COMPUTELOOP_SMTP_HOST", "").strip()
    if not host:
        return None
    port_text = env.get("COMPUTELOOP_SMTP_PORT", "").strip() or "587"
    try:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError(port_text)
    except ValueError:
        raise InputError("notify.setting_invalid", field="COMPUTELOOP_SMTP_PORT", value=port_text) from None
    return SmtpSettings(
        host=host,
        port=port,
        sender=env.get("COMPUTELOOP_SMTP_FROM", "").strip() or "computeloop@localhost",
        starttls=_flag(env.get("COMPUTELOOP_SMTP_STARTTLS", "1")),
        user=env.get("COMPUTELOOP_SMTP_USER", "").strip(),
        password=env.get("COMPUTELOOP_SMTP_PASSWORD", ""),
    )


def make_transport(settings: SmtpSettings | None = None, *, env: dict[str, str] | None = None) -> "Transport":
    """An :class:`SmtpTransport` when a host is configured, else :class:`InboxOnlyTransport`."""
    settings = settings or smtp_settings(env)
    if settings is None:
        return InboxOnlyTransport()
    return SmtpTransport(settings.host, settings.port, settings.sender, settings.starttls, settings.user,
                         settings.password, settings.timeout)


class SmtpTransport:
    """Sends through an SMTP server with smtplib: one connection per message, STARTTLS and login optional."""

    delivers_email = True

    def __init__(self, host: str, port: int = 587, sender: str = "computeloop@localhost", starttls: bool = True,
                 user: str = "", password: str = "", timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.user, self._password, self.timeout = starttls, user, password, timeout

    def __repr__(self) -> str:
        return f"SmtpTransport({self.host!r}, {self.port}, sender={self.sender!r}, starttls={self.starttls})"

    def send(self, mail: OutgoingMail) -> None:
        """Deliver ``mail``; returns only after the server answered 250 to the message data.

        Raises:
            DeliveryError: connection, TLS, login or protocol failure; ``permanent`` when the
                server refused the recipient or the message with a 5xx code.
        """
        msg = build_message(mail, self.sender)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self._password)
                smtp.send_message(msg, from_addr=self.sender, to_addrs=[mail.to])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{rcpt}: {code} {_text(resp)}" for rcpt, (code, resp) in exc.recipients.items())
            raise DeliveryError(f"recipient refused ({detail})", permanent=all(500 <= c < 600 for c in codes)) from exc
        except smtplib.SMTPDataError as exc:
            raise DeliveryError(f"message refused: {exc.smtp_code} {_text(exc.smtp_error)}",
                                permanent=500 <= exc.smtp_code < 600) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, auth failed, ... : configuration, retry
            raise DeliveryError(f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}") from exc
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:  # includes timeouts and refused connections
            raise DeliveryError(f"{type(exc).__name__}: {exc} ({self.host}:{self.port})") from exc


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class InboxOnlyTransport:
    """No SMTP host configured: notices reach the in-app inbox only; nothing is e-mailed.

    The sender writes the inbox copy and leaves the e-mail row ``pending`` with
    ``last_error`` = :data:`NO_SMTP` (attempts untouched), so operators see exactly which mails
    were not sent, and configuring a host later sends those that are still fresh.
    """

    delivers_email = False
    NO_SMTP = "no SMTP configured: delivered to the in-app inbox only"

    def send(self, mail: OutgoingMail) -> None:
        """Never called by the sender; refuses, so a misuse cannot pass for a delivery."""
        raise DeliveryError(self.NO_SMTP)


class RecordingTransport:
    """Fake transport for tests: records what it would send; ``fail_with`` makes it refuse."""

    delivers_email = True

    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []
        self.fail_with: DeliveryError | None = None

    def send(self, mail: OutgoingMail) -> None:
        """Record ``mail`` or raise the configured failure."""
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(mail)
