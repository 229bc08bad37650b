"""Sinks over the network: ``webhook`` (HTTP POST of JSON) and ``smtp`` (e-mail).

Both turn every failure into a :class:`~monitor.sinks.DeliveryError` the outbox retries
with backoff, with an error text that names the server but never a secret (the token or
password is also scrubbed from anything a server sends back).

**webhook** — one ``POST`` per message to ``url``; the body is the message as one JSON
object, the same object the ``file`` sink writes as a line::

    {"id": 17, "created_at": "2026-02-05T00:00:00+00:00", "alert_id": 12,
     "recipient": "cgj-monitor", "channel": "sms", "address": "13800000004",
     "subject": "escalated", "text": "【督办】城市管理局…"}

``address`` is the phone number (channel ``sms``), the e-mail address (``email``) or the
case id (``workflow``: ``subject`` is ``hold`` or ``release``). Headers: ``Content-Type:
application/json; charset=utf-8``, ``Idempotency-Key: permit-monitor-<id>`` (delivery is
at least once: drop a repeated key), the configured ``headers``, and the token from the
environment variable named by ``token_env`` as ``Authorization: Bearer <token>`` (or
as-is in ``token_header``). Any status but 2xx, a redirect (not followed: it would turn
the POST into a GET), a refused connection or a timeout is a failed attempt.

**smtp** — one e-mail per message to the user's ``email`` in the catalog, through
smtplib (``security``: ``starttls``, ``ssl`` or ``none``; login with ``user`` and the
password from ``password_env``). Subject and body are Chinese, from monitor/notices.py;
``Message-ID`` is derived from the outbox id, so a repeated delivery can be recognised.
"""

from __future__ import annotations

import http.client
import json
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Mapping

from .notices import email
from .sinks import DeliveryError, Message, Undeliverable, needs_address, secret

DEFAULT_TIMEOUT = 10


def _scrub(text: str, *secrets: str | None) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    return text


Problem = tuple[str, str] | None  # (the option at fault, what is wrong with it)


def _check_timeout(options: Mapping[str, Any]) -> Problem:
    if options.get("timeout", DEFAULT_TIMEOUT) < 1:
        return "timeout", "'timeout' must be at least 1 (seconds)"
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would re-send a POST as a GET without its body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookSink:
    """POSTs each message as JSON to ``url`` (see the module docstring for the body)."""

    TYPE = "webhook"
    OPTIONS = {
        "url": (str, True, "http:// or https:// address the JSON is POSTed to"),
        "headers": (dict, False, "extra request headers, name: value (never a secret)"),
        "token_env": (str, False, "environment variable holding the secret token, sent as "
                                  "Authorization: Bearer <token>"),
        "token_header": (str, False, "send the token as-is in this header instead"),
        "timeout": (int, False, f"seconds to wait for the server (default {DEFAULT_TIMEOUT})"),
    }

    @staticmethod
    def check(options: Mapping[str, Any]) -> Problem:
        url = urllib.parse.urlsplit(options["url"])
        if url.scheme not in ("http", "https") or not url.hostname:
            return "url", (f"'url' must be an http:// or https:// address, got "
                           f"'{options['url']}'")
        secret_headers = {"authorization", str(options.get("token_header", "")).lower()}
        for name, value in (options.get("headers") or {}).items():
            if not isinstance(value, str) or not str(name).isascii() or not value.isascii():
                return "headers", (f"header '{name}' must be text in ASCII, e.g. "
                                   "'X-Source: permit-monitor'")
            if str(name).lower() in secret_headers:
                return "headers", (f"header '{name}' would put a secret in config.yaml; "
                                   "name an environment variable in token_env instead")
        if "token_header" in options and "token_env" not in options:
            return "token_header", ("'token_header' needs 'token_env' (the variable "
                                    "holding the token)")
        return _check_timeout(options)

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path):
        self.name = name
        self.url = options["url"]
        parts = urllib.parse.urlsplit(self.url)  # shown in errors: no credentials, no query
        self.where = f"{parts.scheme}://{parts.hostname}" + \
            (f":{parts.port}" if parts.port else "") + parts.path
        self.timeout = options.get("timeout", DEFAULT_TIMEOUT)
        self.token = secret(name, "token_env", options.get("token_env"))
        self.headers = {"Content-Type": "application/json; charset=utf-8",
                        "User-Agent": "permit-monitor", **(options.get("headers") or {})}
        if self.token:
            header = options.get("token_header")
            self.headers[header or "Authorization"] = \
                self.token if header else f"Bearer {self.token}"
        self.opener = urllib.request.build_opener(_NoRedirect)

    def send(self, message: Message) -> None:
        needs_address(message)
        body = json.dumps(message.as_json(), ensure_ascii=False, sort_keys=True).encode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            **self.headers, "Idempotency-Key": f"permit-monitor-{message.id}"})
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            said = exc.read(300).decode("utf-8", "replace").strip()
            hint = " (redirects are not followed)" if 300 <= exc.code < 400 else ""
            raise DeliveryError(_scrub(f"POST {self.where}: HTTP {exc.code} {exc.reason}{hint}"
                                       + (f": {said}" if said else ""), self.token)) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise DeliveryError(_scrub(f"POST {self.where}: {reason or type(reason).__name__}",
                                       self.token)) from None

    def close(self) -> None:
        pass


SECURITY = {"starttls": 587, "ssl": 465, "none": 25}  # → default port


class SmtpSink:
    """Sends each message as an e-mail in Chinese to the user's catalog ``email``."""

    TYPE = "smtp"
    OPTIONS = {
        "host": (str, True, "SMTP server"),
        "port": (int, False, "default 587 (starttls), 465 (ssl) or 25 (none)"),
        "security": (str, False, "starttls (default), ssl, or none (a trusted relay only)"),
        "from": (str, True, "sender, e.g. '县纪委监委 <jw@county.gov.cn>'"),
        "user": (str, False, "login name; the password comes from password_env"),
        "password_env": (str, False, "environment variable holding the login password"),
        "timeout": (int, False, f"seconds to wait for the server (default {DEFAULT_TIMEOUT})"),
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
        return _check_timeout(options)

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path):
        self.name = name
        self.host = options["host"]
        self.security = options.get("security", "starttls")
        self.port = options.get("port") or SECURITY[self.security]
        self.sender = options["from"]
        self.user = options.get("user")
        self.password = secret(name, "password_env", options.get("password_env"))
        self.timeout = options.get("timeout", DEFAULT_TIMEOUT)
        self.smtp: smtplib.SMTP | None = None  # one connection per flush, opened on demand

    def _connect(self) -> smtplib.SMTP:
        if self.smtp is None:
            context = ssl.create_default_context()
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                        context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
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
        try:
            self._connect().send_message(self._mail(message))
        except smtplib.SMTPRecipientsRefused as exc:
            code, said = next(iter(exc.recipients.values()))
            text = f"{where} refused {message.address}: {code} {_said(said)}"
            raise (Undeliverable if code >= 500 else DeliveryError)(text) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise DeliveryError(_scrub(f"{where}: {exc.smtp_code} {_said(exc.smtp_error)}",
                                       self.password)) from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryError(_scrub(f"{where}: {exc or type(exc).__name__}",
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
