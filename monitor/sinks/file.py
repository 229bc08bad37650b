"""The ``file`` sink: each message appended as one JSON object per line (JSON Lines), the
same object the ``webhook`` sink POSTs, for a system that picks the file up."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from .base import DeliveryError, Message, Sink, needs_address


class FileSink(Sink):
    """Appends each message as one JSON object per line (JSON Lines) to ``path``, made
    durable (fsync) before it counts as delivered."""

    TYPE = "file"
    OPTIONS = {"path": (str, True, "the JSON Lines file, relative to config.yaml")}

    def __init__(self, name: str, options: Mapping[str, Any], base_dir: Path):
        super().__init__(name, options, base_dir)
        self.path = base_dir / options["path"]
        self.where = options["path"]  # as config.yaml names it, relative to that file

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
