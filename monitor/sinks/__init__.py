"""How a notification leaves the building: one class per sink, chosen by name in config.

Policy (who is told what, and when) lives in monitor/escalation.py and
monitor/supervision.py; the queue and its retries in monitor/outbox.py. The contract a
sink meets, and the helpers sinks share, are in :mod:`.base`; each sink is a module of
its own: ``log``, ``file``, ``webhook`` (HTTP POST of JSON), ``smtp`` (e-mail).

Adding a sink: a module with a :class:`~.base.Sink` subclass, listed in
:data:`SINK_TYPES`; config.yaml then accepts its ``TYPE`` and validates its ``OPTIONS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .base import Sink
from .file import FileSink
from .log import LogSink
from .smtp import SmtpSink
from .webhook import WebhookSink

SINK_TYPES: dict[str, type[Sink]] = {
    "log": LogSink, "file": FileSink, "webhook": WebhookSink, "smtp": SmtpSink}


def open_sink(name: str, type_: str, options: Mapping[str, Any], base_dir: Path) -> Sink:
    return SINK_TYPES[type_](name, options, base_dir)
