"""The ``webhook`` sink: one HTTP ``POST`` of JSON per message to ``url``.

The body is the message as one JSON object, the same object the ``file`` sink writes as
a line::

    {"id": 17, "created_at": "2026-02-05T00:00:00+00:00", "alert_id": 12,
     "recipient": "cgj-monitor", "channel": "sms", "address": "13800000004",
     "subject": "escalated", "text": "【督办】城市管理局…"}

``address`` is the phone number (channel ``sms``), the e-mail address (``email``) or the
case id (``workflow``: ``subject`` is ``hold`` or ``release``). Headers: ``Content-Type:
application/json; charset=utf-8``, ``Idempotency-Key: permit-monitor-<id>`` (delivery is
at least once: drop a repeated key), the configured ``headers``, and the token from the
environment variable named by ``token_env`` as ``Authorization: Bearer <token>`` (or
as-is in ``token_header``). Any status but 2xx, a redirect (not followed: it would turn
the POST into a GET), a refused connection or a timeout is a failed attempt: a
:class:`~monitor.sinks.base.DeliveryError` the outbox retries with backoff, whose text
names the server but never the token (scrubbed from anything the server sends back too).
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from pathlib import Path
from typing import Any, Mapping

from .base import (DEFAULT_TIMEOUT, Deadline, DeliveryError, Message, Problem, Sink,
                   check_timeout, needs_address, scrub, secret)

ANSWER_BYTES = 65536  # read of an answer: enough for any gateway's reply, bounded


class WebhookSink(Sink):
    """POSTs each message as JSON to ``url`` (see the module docstring for the body)."""

    TYPE = "webhook"
    OPTIONS = {
        "url": (str, True, "http:// or https:// address the JSON is POSTed to"),
        "headers": (dict, False, "extra request headers, name: value (never a secret)"),
        "token_env": (str, False, "environment variable holding the secret token, sent as "
                                  "Authorization: Bearer <token>"),
        "token_header": (str, False, "send the token as-is in this header instead"),
        "timeout": (int, False, "seconds one delivery may take in all: connect, send and "
                                f"the answer (default {DEFAULT_TIMEOUT})"),
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
        return check_timeout(options)

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path):
        super().__init__(name, options, base_dir)
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
        self.parts = parts

    def _connection(self, deadline: Deadline) -> http.client.HTTPConnection:
        host, port = self.parts.hostname or "", self.parts.port
        if self.parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=deadline.remaining(),
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(host, port, timeout=deadline.remaining())

    def send(self, message: Message) -> None:
        needs_address(message)
        body = json.dumps(message.as_json(), ensure_ascii=False, sort_keys=True).encode()
        target = self.parts.path or "/"
        if self.parts.query:
            target += "?" + self.parts.query
        headers = {**self.headers, "Idempotency-Key": f"permit-monitor-{message.id}",
                   "Content-Length": str(len(body))}
        with Deadline(self.timeout) as deadline:
            conn = self._connection(deadline)
            try:
                conn.connect()
                deadline.watch(conn.sock)
                conn.request("POST", target, body=body, headers=headers)
                response = conn.getresponse()
                said = response.read(ANSWER_BYTES)
            except (http.client.HTTPException, OSError) as exc:
                reason = (f"timed out: no complete answer within {self.timeout} s (the "
                          "deadline of one delivery)") if deadline.expired \
                    else (str(exc) or type(exc).__name__)
                raise DeliveryError(scrub(f"POST {self.where}: {reason}", self.token)) from None
            finally:
                conn.close()
        if 200 <= response.status < 300:
            return
        text = said[:300].decode("utf-8", "replace").strip()
        hint = " (redirects are not followed)" if 300 <= response.status < 400 else ""
        raise DeliveryError(scrub(f"POST {self.where}: HTTP {response.status} "
                                  f"{response.reason}{hint}" + (f": {text}" if text else ""),
                                  self.token))
