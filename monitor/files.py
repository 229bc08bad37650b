"""Files the program writes: whole or not at all, and readable only by its owner.

:func:`write_atomic` writes to a temporary file beside the target, fsyncs it, sets its
mode and renames it over the target (a rename is atomic): a process killed mid-write
leaves the previous report intact, never a corrupt ``.xlsx``. :func:`make_dir` creates a
folder with the configured mode. The modes are ``limits.file_mode`` / ``dir_mode``
(0600 / 0700 by default): the reports, the SQLite database and the inbox's moved files
hold names, case ids and amounts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

OWNER_ONLY_FILE, OWNER_ONLY_DIR = 0o600, 0o700  # limits.file_mode, limits.dir_mode defaults


def make_dir(path: Path, mode: int = OWNER_ONLY_DIR) -> Path:
    """``path`` and its missing parents, created with ``mode`` (existing ones untouched)."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=mode)
        os.chmod(path, mode)  # mkdir's mode is filtered by the umask
    return path


def write_atomic(path: Path, content: str | bytes | Callable[[Path], None],
                 mode: int = OWNER_ONLY_FILE, encoding: str = "utf-8") -> Path:
    """Write ``content`` (text, bytes, or a function writing a file at the path it is
    given) to ``path`` all at once; see the module docstring."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if callable(content):
            content(tmp)
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding=encoding)
        os.chmod(tmp, mode)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
