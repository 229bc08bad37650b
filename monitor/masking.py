"""Secrets masked in every form, by one function: :func:`mask`.

What it hides, wherever text goes out (log records, the CLI's errors, run records and
their operational alerts, outbox messages and their errors, trail entries):

* a password in a URL, as ``user:password@host`` or as a query parameter
  (``?password=…``, ``&pwd=…``, ``token``, ``secret``, ``api_key``…);
* every secret the program was given (:func:`register`: sink tokens and passwords read
  from the environment, the password of a database URL), as is, base64-encoded (standard
  and URL-safe, with or without padding: a server may echo ``Authorization: Basic …``
  back) and URL-encoded (``%40`` for ``@``…).

The registry of secrets is per process, filled as secrets are read; nothing is written
anywhere. A secret under 4 characters is not registered (it would mask ordinary words).
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import urllib.parse

MASK = "***"
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^:/@\s]*:)([^@\s/]+)(@)")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:password|passwd|pwd|pass|secret|token|access_token|api_key|apikey)=)"
    r"([^&;\s'\"]+)")
_secrets: set[str] = set()
_forms: list[str] = []  # every form of every secret, longest first
_lock = threading.Lock()


def register(secret: str | None) -> None:
    """Remember ``secret`` (and its encoded forms) to be masked from now on."""
    if not secret or len(secret) < 4:
        return
    with _lock:
        if secret in _secrets:
            return
        _secrets.add(secret)
        raw = secret.encode()
        forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(raw).decode()
            forms |= {text, text.rstrip("=")}
        _forms[:] = sorted(set(_forms) | {f for f in forms if len(f) >= 4}, key=len,
                           reverse=True)


def register_url(url: str | None) -> None:
    """Register the password of a database URL, wherever the URL puts it."""
    if not url:
        return
    parts = urllib.parse.urlsplit(url)
    try:
        register(urllib.parse.unquote(parts.password or ""))
    except ValueError:
        pass
    for key, value in urllib.parse.parse_qsl(parts.query):
        if key.lower() in ("password", "passwd", "pwd", "pass"):
            register(value)


def mask(text: str, *also: str | None) -> str:
    """``text`` with URL passwords and every registered secret (and ``also``) masked."""
    if not text:
        return text
    for secret in also:
        register(secret)
    if "://" in text:  # what _URL_PASSWORD needs to match
        text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    if "=" in text:  # what _QUERY_SECRET needs to match
        text = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)
    for form in _forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def mask_value(value):
    """:func:`mask` through the text of a JSON-like value (a trail detail, run counts)."""
    kind = type(value)  # the usual types first, by identity: a pass masks ~10 per entry
    if kind is str:
        return mask(value)
    if value is None or kind is int or kind is bool or kind is float:
        return value
    if kind is dict:
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(v) for v in value)
    return value


class MaskingFilter(logging.Filter):
    """A logging filter that masks each record's final message (installed by the CLI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message or record.exc_info:
            record.msg, record.args = masked, None
            if record.exc_info:
                import traceback

                record.msg = masked + "\n" + mask("".join(
                    traceback.format_exception(*record.exc_info)))
                record.exc_info, record.exc_text = None, None
        return True
