"""How a notification leaves the building: one class per sink, chosen by name in config.

Policy (who is told what, and when) lives in monitor/escalation.py and
monitor/supervision.py; the queue and its retries in monitor/outbox.py. A sink only
delivers one :class:`Message` or raises:

* :class:`DeliveryError` — worth retrying later (a server down, a timeout);
* :class:`Undeliverable` — retrying cannot help (no phone number in the catalog).

Adding a sink: write a class with ``TYPE``, ``OPTIONS`` (option → (type, required, help)),
optionally ``check(options)`` (None, or the option at fault and what is wrong),
``__init__(name, options, base_dir)``, ``send(message)`` and ``close()``, and add it to
:data:`SINK_TYPES`.
``config.yaml`` validates a sink's options against ``OPTIONS`` and ``check`` before
anything runs. Secrets come from an environment variable named in an option
(``token_env``, ``password_env``), never from the file itself; a variable that is not set
is one :class:`~monitor.errors.SinkError` naming it, raised when the sink is opened, before
any message is claimed. A secret never appears in an error, a log line or the outbox.

The network sinks (``webhook``, ``smtp``) are in monitor/netsinks.py.

Delivery is at least once: a process killed after a sink accepted a message but before
the outbox recorded it sends it again on the next flush. Every message carries its
outbox ``id`` so a receiver can drop duplicates.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Mapping, Protocol

from .errors import SinkError

log = logging.getLogger("monitor.notify")


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


class Sink(Protocol):
    TYPE: ClassVar[str]
    OPTIONS: ClassVar[Mapping[str, tuple[type, bool, str]]]
    name: str

    def send(self, message: Message) -> None: ...

    def close(self) -> None: ...


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
    return value


class LogSink:
    """Writes each message to the log (logger ``monitor.notify``, level INFO: ``-v``)."""

    TYPE = "log"
    OPTIONS: Mapping[str, tuple[type, bool, str]] = {}

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path):
        self.name = name

    def send(self, message: Message) -> None:
        log.info("%s to %s (%s %s): %s", message.subject, message.recipient, message.channel,
                 message.address or "-", message.text)

    def close(self) -> None:
        pass


class FileSink:
    """Appends each message as one JSON object per line (JSON Lines) to ``path``, made
    durable (fsync) before it counts as delivered."""

    TYPE = "file"
    OPTIONS = {"path": (str, True, "the JSON Lines file, relative to config.yaml")}

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path):
        self.name = name
        self.path = base_dir / options["path"]

    def send(self, message: Message) -> None:
        needs_address(message)
        line = json.dumps(message.as_json(), ensure_ascii=False, sort_keys=True) + "\n"
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        pass


def _types() -> dict[str, type]:
    from .netsinks import SmtpSink, WebhookSink

    return {"log": LogSink, "file": FileSink, "webhook": WebhookSink, "smtp": SmtpSink}


SINK_TYPES: dict[str, type] = _types()


def open_sink(name: str, type_: str, options: Mapping[str, Any], base_dir: Path) -> Sink:
    return SINK_TYPES[type_](name, options, base_dir)
