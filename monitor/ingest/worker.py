"""Reading and validating a source in a second process, while this one writes.

Half the time of an event ingestion is Python (CSV, validation, hashing, binding) and
half the database, so on a machine with two CPUs the two halves can overlap: a forked
child reads the source and prepares each batch; the parent classifies, inserts,
quarantines and commits them in order, exactly as it would have in one process.

* The child never touches the database. It is forked after the parent has loaded all
  that validation needs (catalog, bind processors, the run id), and it leaves through
  ``os._exit`` (multiprocessing's way), so no inherited connection is ever closed or
  used from it.
* Batches go through a plain pipe, one pickled message each. A write blocks while the
  parent has not read the previous one, so at most about three batches exist at a time
  (being prepared, in the pipe, being stored): memory stays flat.
* A read error in the child (:class:`IngestError`) reaches the parent after the batches
  before it, and the parent raises it: the same line as in one process. Anything else
  the child raises is a bug and comes back with its traceback.
* The child dies with the parent: the kernel kills it when the parent dies (Linux
  ``PR_SET_PDEATHSIG``), and a parent that stops reading breaks the pipe. If the child
  dies, the parent sees the pipe close and stops with an error.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from ..errors import IngestError
from .store import batches

T = TypeVar("T")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
BATCH, END, ERROR, BUG = "batch", "end", "error", "bug"


def can_fork() -> bool:
    """Whether a second process can help and is safe: fork exists (and is not macOS's,
    where system libraries break in forked children), there is a second CPU, no other
    thread runs (a fork copies only the calling thread, not the locks others hold), and
    this process may have children (a daemonic multiprocessing worker may not).
    """
    if (sys.platform == "darwin" or "fork" not in multiprocessing.get_all_start_methods()
            or multiprocessing.current_process().daemon):
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cpus or 1) > 1 and threading.active_count() == 1


def prepared_in_child(rows: Iterable[Any], prepare: Callable[[list[Any]], T], size: int,
                      position: Callable[[], int], label: str) -> Iterator[tuple[T, int]]:
    """``(prepare(batch), bytes read)`` for each batch of ``size`` rows, computed in a child.

    Close the iterator (``contextlib.closing``) when stopping early: that ends the child.
    """
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_produce, name="permit-monitor reader", daemon=True,
                        args=(writer, reader, rows, prepare, size, position, os.getpid()))
    child.start()
    writer.close()
    finished = False
    try:
        while True:
            message = _receive(reader, child, label)
            if message[0] == END:
                finished = True
                return
            yield message[1], message[2]
    finally:
        reader.close()
        if not finished:
            child.kill()
        child.join()


def _receive(reader: Connection, child: BaseProcess, label: str) -> tuple:
    try:
        message = reader.recv()
    except (EOFError, OSError):  # OSError: the pipe closed in the middle of a message
        child.join()
        raise IngestError(f"{label}: the reading process stopped unexpectedly "
                          f"(exit code {child.exitcode})") from None
    if message[0] == ERROR:
        raise IngestError(message[1])
    if message[0] == BUG:
        raise RuntimeError(f"the reading process failed:\n{message[1]}")
    return message


def _produce(writer: Connection, reader: Connection, rows: Iterable[Any],
             prepare: Callable[[list[Any]], Any], size: int, position: Callable[[], int],
             parent: int) -> None:
    """The child: prepare and send every batch, then END, or the error that stopped it."""
    reader.close()
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        for batch in batches(rows, size):
            writer.send((BATCH, prepare(batch), position()))
        writer.send((END,))
    except BrokenPipeError:
        return  # the parent stopped reading: it failed, was interrupted, or is gone
    except IngestError as exc:
        _send_last(writer, (ERROR, str(exc)))
    except Exception:  # noqa: BLE001 - a bug: the parent raises it with this traceback
        _send_last(writer, (BUG, traceback.format_exc()))


def _send_last(writer: Connection, message: tuple) -> None:
    try:
        writer.send(message)
    except BrokenPipeError:
        pass


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only; elsewhere
    the child ends at its next write into the broken pipe)."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):
        pass
    if os.getppid() != parent:  # the parent was gone before the request took effect
        os._exit(0)
