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
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from .base import (DEFAULT_TIMEOUT, DeliveryError, Message, Problem, Sink, check_timeout,
                   needs_address, scrub, secret)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would re-send a POST as a GET without its body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookSink(Sink):
    """POSTs each message as JSON to ``url`` (see the module docstring for the body)."""

    TYPE = "webhook"
    NETWORK = True
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
            raise DeliveryError(scrub(f"POST {self.where}: HTTP {exc.code} {exc.reason}{hint}"
                                       + (f": {said}" if said else ""), self.token)) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise DeliveryError(scrub(f"POST {self.where}: {reason or type(reason).__name__}",
                                       self.token)) from None

