"""The ``log`` sink: each message as one log line (logger ``monitor.notify``, level INFO,
shown with ``-v``). Always defined, so a fresh install delivers somewhere visible."""

from __future__ import annotations

import logging

from .base import Message, Sink

log = logging.getLogger("monitor.notify")


class LogSink(Sink):
    """Writes each message to the log (logger ``monitor.notify``, level INFO: ``-v``)."""

    TYPE = "log"
    OPTIONS = {}

    def __init__(self, name, options, base_dir):
        super().__init__(name, options, base_dir)
        self.where = "the log only (logger monitor.notify, shown with -v)"

    def send(self, message: Message) -> None:
        log.info("%s to %s (%s %s): %s", message.subject, message.recipient, message.channel,
                 message.address or "-", message.text)
