"""The ``smtp`` sink: one e-mail per message to the user's ``email`` in the catalog.

Through smtplib (``security``: ``starttls``, ``ssl`` or ``none``; login with ``user`` and
the password from ``password_env``). Subject and body are Chinese, from
monitor/notices.py; ``Message-ID`` is derived from the outbox id, so a repeated delivery
can be recognised. Every failure is a :class:`~monitor.sinks.base.DeliveryError` the
outbox retries with backoff (a recipient the server refuses for good:
:class:`~monitor.sinks.base.Undeliverable`), whose text names the server but never the
password.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Mapping

from ..notices import email
from .base import (DEFAULT_TIMEOUT, Deadline, DeliveryError, Message, Problem, Sink,
                   Undeliverable, check_timeout, needs_address, scrub, secret)


SECURITY = {"starttls": 587, "ssl": 465, "none": 25}  # → default port


class _Watched:
    """An SMTP connection whose socket the delivery's :class:`Deadline` watches from the
    moment it exists: the server's greeting is read inside ``connect``."""

    deadline: Deadline | None = None

    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        if self.deadline is not None:
            self.deadline.watch(sock)
        return sock


class _SMTP(_Watched, smtplib.SMTP):
    pass


class _SMTP_SSL(_Watched, smtplib.SMTP_SSL):
    pass


class SmtpSink(Sink):
    """Sends each message as an e-mail in Chinese to the user's catalog ``email``."""

    TYPE = "smtp"
    OPTIONS = {
        "host": (str, True, "SMTP server"),
        "port": (int, False, "default 587 (starttls), 465 (ssl) or 25 (none)"),
        "security": (str, False, "starttls (default), ssl, or none (a trusted relay only)"),
        "from": (str, True, "sender, e.g. '县纪委监委 <jw@county.gov.cn>'"),
        "user": (str, False, "login name; the password comes from password_env"),
        "password_env": (str, False, "environment variable holding the login password"),
        "timeout": (int, False, "seconds one delivery may take in all: connect, send and "
                                f"the answer (default {DEFAULT_TIMEOUT})"),
    }

    @staticmethod
    def check(options: Mapping[str, Any]) -> Problem:
        security = options.get("security", "starttls")
        if security not in SECURITY:
            return "security", f"'security' must be one of {', '.join(SECURITY)}, got '{security}'"
        if "@" not in parseaddr(options["from"])[1]:
            return "from", f"'from' must be an e-mail address, got '{options['from']}'"
        if ("user" in options) != ("password_env" in options):
            return "user", "'user' and 'password_env' go together (a login needs both)"
        if "user" in options and security == "none":
            return "security", ("a login over security: none would send the password in "
                                "clear; use starttls or ssl")
        return check_timeout(options)

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path):
        super().__init__(name, options, base_dir)
        self.host = options["host"]
        self.security = options.get("security", "starttls")
        self.port = options.get("port") or SECURITY[self.security]
        self.sender = options["from"]
        self.user = options.get("user")
        self.password = secret(name, "password_env", options.get("password_env"))
        self.timeout = options.get("timeout", DEFAULT_TIMEOUT)
        self.smtp: smtplib.SMTP | None = None  # one connection per flush, opened on demand

    def _connect(self, deadline: Deadline) -> smtplib.SMTP:
        if self.smtp is None:
            context = ssl.create_default_context()
            smtp: smtplib.SMTP = _SMTP_SSL(context=context, timeout=deadline.remaining()) \
                if self.security == "ssl" else _SMTP(timeout=deadline.remaining())
            smtp.deadline = deadline  # type: ignore[attr-defined]  # watched from the start
            try:
                smtp.connect(self.host, self.port)
            except BaseException:
                smtp.close()
                raise
            try:
                if self.security == "starttls":
                    smtp.starttls(context=context)
                if self.user:
                    smtp.login(self.user, self.password or "")
            except BaseException:
                smtp.close()
                raise
            self.smtp = smtp
        return self.smtp

    def _mail(self, message: Message) -> EmailMessage:
        subject, body = email(message.subject, message.text, message_id=message.id,
                              alert_id=message.alert_id)
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.address
        mail["Subject"] = subject
        mail["Date"] = format_datetime(message.created_at)
        domain = parseaddr(self.sender)[1].rpartition("@")[2]
        mail["Message-ID"] = f"<permit-monitor.{message.id}@{domain}>"
        mail.set_content(body)
        return mail

    def send(self, message: Message) -> None:
        needs_address(message)
        where = f"SMTP {self.host}:{self.port}"
        with Deadline(self.timeout) as deadline:
            try:
                self._send(message, deadline)
            except DeliveryError:
                if not deadline.expired:
                    raise
                self.close()
                raise DeliveryError(f"{where}: timed out: no complete answer within "
                                    f"{self.timeout} s (the deadline of one delivery)") from None

    def _send(self, message: Message, deadline: Deadline) -> None:
        where = f"SMTP {self.host}:{self.port}"
        try:
            smtp = self._connect(deadline)
            deadline.watch(smtp.sock)
            smtp.send_message(self._mail(message))
        except smtplib.SMTPRecipientsRefused as exc:
            code, said = next(iter(exc.recipients.values()))
            text = f"{where} refused {message.address}: {code} {_said(said)}"
            raise (Undeliverable if code >= 500 else DeliveryError)(text) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise DeliveryError(scrub(f"{where}: {exc.smtp_code} {_said(exc.smtp_error)}",
                                       self.password)) from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryError(scrub(f"{where}: {exc or type(exc).__name__}",
                                       self.password)) from None

    def close(self) -> None:
        if self.smtp is not None:
            smtp, self.smtp = self.smtp, None
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _said(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
