"""Hostile input, part 6: the inbox takes regular files only, owned as configured; what
it keeps of a refused file is the reason, never the file; what it creates is for its
owner only. Before, it followed a symbolic link to a file the dropper could not read and
copied its contents into a world-readable ``.reason`` and the quarantine."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from conftest import NOW
from monitor.config import InboxConfig
from monitor.inbox import process_inbox
from monitor.models import Quarantine

SECRET_LINE = "root:$6$salt$hashvalue-never-copied:0:0"


def _config(config, tmp_path: Path, **inbox) -> tuple:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return replace(config, inbox=InboxConfig(dir=folder, settle_seconds=0, **inbox)), folder


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_symlink_is_refused_unread_and_nothing_of_its_target_is_copied(store, config,
                                                                         tmp_path):
    config, inbox = _config(config, tmp_path)
    private = tmp_path / "private.csv"
    private.write_text(f"event_id,case_id\n{SECRET_LINE},x\n", encoding="utf-8")
    (inbox / "events.csv").symlink_to(private)
    os.mkfifo(inbox / "pipe.csv")  # reading a pipe would block the pass forever
    started = time.monotonic()
    files = process_inbox(store, config, NOW, time.time() + 60)
    assert time.monotonic() - started < 10
    assert sorted((f.name, f.status) for f in files) == [("events.csv", "failed"),
                                                         ("pipe.csv", "failed")]
    reasons = {f.name: f.detail for f in files}
    assert "a symbolic link; only regular files" in reasons["events.csv"]
    assert "not a regular file" in reasons["pipe.csv"]
    failed = inbox / "failed"
    assert (failed / "events.csv").is_symlink()  # the link moved, its target untouched
    assert private.read_text(encoding="utf-8").count(SECRET_LINE) == 1
    for reason in failed.glob("*.reason"):
        assert SECRET_LINE not in reason.read_text(encoding="utf-8")
        assert _mode(reason) == 0o600
    assert _mode(failed) == 0o700
    with store.connect() as conn:
        assert conn.scalar(select(Quarantine.id)) is None


def test_a_file_of_another_owner_is_refused(store, config, tmp_path):
    config, inbox = _config(config, tmp_path, owner="someone-else")
    (inbox / "events.csv").write_text("event_id\n", encoding="utf-8")
    [f] = process_inbox(store, config, NOW, time.time() + 60)
    assert f.status == "failed" and "not by someone-else (inbox.owner)" in f.detail
    (tmp_path / "mine").mkdir()
    config, inbox2 = _config(config, tmp_path / "mine", owner=str(os.getuid()))
    (inbox2 / "events.csv").write_text("event_id,case_id,item_code,step,occurred_at\n",
                                       encoding="utf-8")
    [f] = process_inbox(store, config, NOW, time.time() + 60)
    assert f.status == "done"
    done = inbox2 / "done"
    assert _mode(done) == 0o700 and _mode(done / "events.csv") == 0o600


def test_a_long_reason_is_cut(store, config, tmp_path):
    config, inbox = _config(config, tmp_path)
    (inbox / "catalog.yaml").write_text("departments: [" + "x" * 50_000 + "\n",
                                        encoding="utf-8")
    [f] = process_inbox(store, config, NOW, time.time() + 60)
    reason = (inbox / "failed" / "catalog.yaml.reason").read_text(encoding="utf-8")
    assert f.status == "failed" and len(reason) <= 2002
