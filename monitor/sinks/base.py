"""The contract of a sink, and what every sink shares.

A sink only delivers one :class:`Message` or raises:

* :class:`DeliveryError` — worth retrying later (a server down, a timeout);
* :class:`Undeliverable` — retrying cannot help (no phone number in the catalog).

A sink class (a subclass of :class:`Sink`) declares ``TYPE`` (its name in config.yaml),
``OPTIONS`` (option → (type, required, help)) and, if some values need more than a type
check, ``check(options)`` (None, or the option at fault and what is wrong); it is built
with ``(name, options, base_dir)`` and has ``send(message)`` and ``close()``.
``config.yaml`` validates a sink's options against ``OPTIONS`` and ``check`` before
anything runs. Secrets come from an environment variable named in an option
(``token_env``, ``password_env``) through :func:`secret`, never from the file itself; a
variable that is not set is one :class:`~monitor.errors.SinkError` naming it, raised when
the sink is opened, before any message is claimed. A secret never appears in an error, a
log line or the outbox (:func:`scrub`).

Delivery is at least once: a process killed after a sink accepted a message but before
the outbox recorded it sends it again on the next flush. Every message carries its
outbox ``id`` so a receiver can drop duplicates.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Mapping

from ..errors import SinkError
from ..masking import mask, register

DEFAULT_TIMEOUT = 10  # seconds one delivery of a network sink may take, unless configured

# What a sink's check() finds wrong: (the option at fault, what is wrong with it), or None.
Problem = tuple[str, str] | None


class DeliveryError(Exception):
    """The sink could not deliver now; the outbox retries later with backoff."""


class Undeliverable(DeliveryError):
    """Retrying cannot help; the message is marked failed at once, with the reason."""


@dataclass(frozen=True)
class Message:
    id: int
    created_at: datetime
    alert_id: int | None
    recipient: str
    channel: str
    address: str | None
    subject: str
    text: str

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["created_at"] = self.created_at.isoformat()
        return out


class Sink(ABC):
    """One way out for notifications, opened by the outbox for a flush and closed after."""

    TYPE: ClassVar[str]
    OPTIONS: ClassVar[Mapping[str, tuple[type, bool, str]]]

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path):
        self.name = name

    @staticmethod
    def check(options: Mapping[str, Any]) -> Problem:
        """What is wrong with ``options`` beyond their types (None: nothing)."""
        return None

    @abstractmethod
    def send(self, message: Message) -> None:
        """Deliver one message, or raise :class:`DeliveryError` / :class:`Undeliverable`."""

    def close(self) -> None:
        """Release what :meth:`send` opened (a connection kept for the flush)."""


ADDRESSES = {"sms": "phone number", "email": "e-mail address"}  # channel → catalog field


def needs_address(message: Message) -> None:
    """An SMS or e-mail without an address in the catalog cannot be delivered."""
    if message.channel in ADDRESSES and not message.address:
        raise Undeliverable(f"no {ADDRESSES[message.channel]} for user '{message.recipient}' "
                            "in the catalog")


def secret(sink: str, option: str, variable: str | None) -> str | None:
    """The value of the environment variable named by a sink's ``option`` (None: unset
    option); a variable that is not set is one clear error naming it."""
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise SinkError(f"sink '{sink}': environment variable {variable} is not set "
                        f"(named by {option} in config.yaml)")
    register(value)  # masked from now on, in every form (monitor/masking.py)
    return value


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every secret masked as ``***``, as is or encoded (a server may echo a
    token back, base64- or URL-encoded): :func:`monitor.masking.mask`."""
    return mask(text, *secrets)


class Deadline:
    """A total time limit on one delivery — connect, send and the answer together.

    A per-operation socket timeout is no limit: a server sending one byte every two
    seconds answers every read in time and holds the delivery (and whatever waits on
    it) forever. When the deadline passes, the sockets handed to :meth:`watch` are shut
    down, so whatever blocks on them returns at once; :attr:`expired` tells why.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        """Seconds left (at least a little, for a socket timeout)."""
        return max(self.end - time.monotonic(), 0.05)

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


def check_timeout(options: Mapping[str, Any]) -> Problem:
    if options.get("timeout", DEFAULT_TIMEOUT) < 1:
        return "timeout", "'timeout' must be at least 1 (seconds)"
    return None
