"""The inbox: a drop directory whose files are ingested, then moved to ``done/`` or, when
a file cannot be read at all, to ``failed/`` with a ``.reason`` file beside it.

A file is taken by its name (``inbox.catalog``, ``inbox.receipts``, ``inbox.activity``,
``inbox.ratings``, ``inbox.complaints``, then ``inbox.events`` patterns; catalogs first, so the events of a new item find it). A file
that may still be being written is left for the next pass:

* names starting with ``.`` or ``~`` or ending in ``.part``, ``.tmp``, ``.partial`` are
  never taken — the write-then-rename convention: write ``.events.csv`` (or
  ``events.csv.part``), then rename it to ``events.csv`` (a rename is atomic);
* any other file is taken only once it has not changed for ``inbox.settle_seconds``
  (for a plain ``cp`` or an upload that does not rename).

A catalog carries powers (users' roles and departments): one dropped into the inbox is
refused (to ``failed/``, with the reason) — load it with ``permit-monitor ingest catalog``
— unless ``inbox.trusted_catalog_dir`` names a directory for them; catalogs there are
taken first (their ``done/`` and ``failed/`` are beside them), and still cannot grant tier
2 or move a monitor without approval (monitor/grants.py).

Rows with problems do not fail a file: they are quarantined as with ``ingest events``
and the file goes to ``done/``. A process killed mid-file leaves the file in place; the
next pass ingests it again (rows already stored count as duplicates) and moves it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
import logging
import os
import stat
from dataclasses import dataclass, replace
from functools import partial
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from .config import Config, InboxConfig, Limits
from .errors import MonitorError
from .files import make_dir, write_atomic
from .masking import mask

log = logging.getLogger(__name__)
IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".partial", ".filepart", ".crdownload")
ORDER = ("catalog", "events", "receipts", "activity", "ratings", "complaints")
# events' *.csv matches last
MATCH_ORDER = ("catalog", "receipts", "activity", "ratings", "complaints", "events")
REASON_CHARS = 2000


@dataclass(frozen=True)
class InboxFile:
    name: str
    kind: str | None
    status: str  # done | failed
    detail: str  # a tally, or the reason it failed
    moved_to: Path


def _kind(inbox: InboxConfig, name: str) -> str | None:
    for kind in MATCH_ORDER:
        if any(fnmatch.fnmatch(name.lower(), p.lower()) for p in getattr(inbox, kind)):
            return kind
    return None


def _in_progress(name: str) -> bool:
    return name.startswith((".", "~")) or name.lower().endswith(IN_PROGRESS_SUFFIXES)


def _refusal(inbox: InboxConfig, path: Path) -> str | None:
    """Why ``path`` must not be read (lstat: a link is judged, never followed), or None.
    A symbolic link would let the dropper make the service read what it cannot (and copy
    it into failed/ and the quarantine); a device or a pipe would block or never end."""
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        return f"{path.name}: {what}; only regular files are taken from the inbox"
    if inbox.owner is not None and str(st.st_uid) != inbox.owner and \
            _user(st.st_uid) != inbox.owner:
        return (f"{path.name}: owned by {_user(st.st_uid) or st.st_uid}, not by "
                f"{inbox.owner} (inbox.owner)")
    return None


def _user(uid: int) -> str | None:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return None


def waiting_files(inbox: InboxConfig, settled_before: float) -> list[str]:
    """Names of the files left for a later pass: still being written, or not settled."""
    if not inbox.dir.is_dir():
        return []
    return sorted(p.name for p in inbox.dir.iterdir() if stat.S_ISREG(p.lstat().st_mode) and (
        _in_progress(p.name) or p.lstat().st_mtime > settled_before))


def ready_files(inbox: InboxConfig, settled_before: float) -> list[tuple[str, Path]]:
    """(kind, path) of the files to take now, catalogs first, each kind by name;
    ``settled_before`` is the wall-clock time (seconds) a file's last change must precede."""
    if not inbox.dir.is_dir():
        return []
    found = []
    for path in inbox.dir.iterdir():
        if path.is_dir() and not path.is_symlink() or _in_progress(path.name):
            continue
        if path.lstat().st_mtime > settled_before:
            log.info("inbox: %s changed less than %s s ago; left for the next pass",
                     path.name, inbox.settle_seconds)
            continue
        kind = _kind(inbox, path.name)
        found.append((kind or "", path))
    rank = {k: i for i, k in enumerate(("",) + ORDER)}
    return sorted(found, key=lambda kp: (rank[kp[0]], kp[1].name))


def _move(path: Path, folder: Path, limits: Limits) -> Path:
    """Move ``path`` into ``folder`` (a link is moved, never followed), never over an
    earlier file of the same name; a regular file gets ``limits.file_mode``."""
    make_dir(folder, limits.dir_mode)
    target, n = folder / path.name, 1
    while target.exists():
        n += 1
        target = folder / f"{path.stem}.{n}{path.suffix}"
    os.replace(path, target)
    if stat.S_ISREG(target.lstat().st_mode):
        os.chmod(target, limits.file_mode)
    return target


def _ingest_one(engine: Engine, config: Config, kind: str, path: Path, now: datetime) -> str:
    from .catalog import ingest_catalog
    from .ingest import Tally, ingest_activity, ingest_events, ingest_receipts, ingest_voice

    if kind == "catalog":
        r = ingest_catalog(engine, path, now, limits=config.limits.yaml, region=config.region)
        return "catalog: " + ", ".join(f"{n} +{r.added[n]} ~{r.updated[n]}"
                                       for n in ("departments", "users", "items"))
    readers: dict[str, Callable[..., Iterable[Any]]] = {
        "events": ingest_events, "receipts": ingest_receipts, "activity": ingest_activity,
        "ratings": partial(ingest_voice, "ratings"),
        "complaints": partial(ingest_voice, "complaints")}
    ingest = readers[kind]
    total = Tally()
    for result in ingest(engine, config, [str(path)], now):
        total += result.tally
    return (f"read {total.read} · inserted {total.inserted} · duplicates {total.duplicates}"
            f" · quarantined {total.quarantined}")


def process_inbox(engine: Engine, config: Config, now: datetime,
                  settled_before: float) -> list[InboxFile]:
    """Ingest every ready file of the inbox; see the module docstring."""
    inbox = config.inbox
    if inbox is None:
        return []
    if not inbox.dir.exists():
        # A new operator sets `inbox: {dir: inbox}` and waits for files: the folder they
        # drop into must exist, and a silent "0 file(s)" would not tell them it did not.
        inbox.dir.mkdir(parents=True)
        log.warning("inbox: created %s (it did not exist); drop files there", inbox.dir)
    out = []
    trusted = replace(inbox, dir=inbox.trusted_catalog_dir) if inbox.trusted_catalog_dir \
        else None
    if trusted is not None and trusted.dir.is_dir() and trusted.dir != inbox.dir:
        for kind, path in ready_files(trusted, settled_before):
            if kind == "catalog":
                refused = _refusal(trusted, path)
                out.append(_fail(config, path, kind, refused) if refused
                           else _take(engine, config, trusted, kind, path, now))
    for kind, path in ready_files(inbox, settled_before):
        refused = _refusal(inbox, path)
        if refused:
            out.append(_fail(config, path, kind or None, refused))
            continue
        if kind == "catalog" and trusted is None:
            out.append(_fail(config, path, kind, (
                f"{path.name}: a catalog carries powers (roles, departments) and is not taken "
                "from the inbox: load it with `permit-monitor ingest catalog FILE`, or set "
                "inbox.trusted_catalog_dir")))
            continue
        if not kind:
            patterns = "; ".join(f"{k}: {', '.join(getattr(inbox, k))}" for k in MATCH_ORDER)
            reason = f"{path.name}: the name matches no inbox pattern ({patterns})"
            out.append(_fail(config, path, None, reason))
            continue
        out.append(_take(engine, config, inbox, kind, path, now))
    return out


def _take(engine: Engine, config: Config, inbox: InboxConfig, kind: str, path: Path,
          now: datetime) -> InboxFile:
    try:
        detail = _ingest_one(engine, config, kind, path, now)
    except MonitorError as exc:  # the whole file is unreadable; a database error propagates
        return _fail(config, path, kind, str(exc))
    moved = _move(path, inbox.dir / "done", config.limits)
    log.info("inbox: %s (%s) %s → %s", path.name, kind, detail, moved)
    return InboxFile(path.name, kind, "done", detail, moved)


def _fail(config: Config, path: Path, kind: str | None, reason: str) -> InboxFile:
    """Move ``path`` to failed/ with a ``.reason`` beside it: the reason only (masked,
    at most a few lines), never more of the file than the line at fault."""
    assert config.inbox is not None
    reason = mask(reason)
    if len(reason) > REASON_CHARS:
        reason = reason[:REASON_CHARS] + "…"
    moved = _move(path, config.inbox.dir / "failed", config.limits)
    write_atomic(moved.with_name(moved.name + ".reason"), reason + "\n",
                 config.limits.file_mode)
    log.warning("inbox: %s rejected: %s", path.name, reason.splitlines()[0])
    return InboxFile(path.name, kind, "failed", reason, moved)
