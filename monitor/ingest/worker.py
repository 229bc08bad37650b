"""Reading and validating a source in a second process, while this one writes.

Half the time of an event ingestion is Python (CSV, validation, hashing, binding) and
half the database, so on a machine with two CPUs the two halves can overlap: a forked
child reads the source and prepares each batch; the parent classifies, inserts,
quarantines and commits them in order, exactly as it would have in one process.

* The child never touches the database. It is forked after the parent has loaded all
  that validation needs (catalog, bind processors, the run id), and it leaves through
  ``os._exit`` (multiprocessing's way), so no inherited connection is ever closed or
  used from it.
* Batches go through a plain pipe, one pickled message each, written by a thread of the
  child (:class:`_Sender`) so that preparing the next batch does not wait for the parent
  to read this one. The thread's queue holds one message, so at most about four batches
  exist at a time (being prepared, queued, in the pipe, being stored): memory stays flat.
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
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

from ..errors import IngestError
from .store import batches

T = TypeVar("T")
P = TypeVar("P")
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
    _serve(writer, [reader], parent, ((BATCH, prepare(batch), position())
                                      for batch in batches(rows, size)))


def in_children(parts: Sequence[P], work: Callable[[P], T], jobs: int, label: str
                ) -> Iterator[T]:
    """``work(part)`` for each of ``parts``, in their order, computed by ``jobs`` children
    (part k by child k mod ``jobs``, so each child's results come out in turn; a child
    runs at most about two parts ahead of the one read here: memory stays flat).

    Close the iterator (``contextlib.closing``) when stopping early: that ends them.
    """
    ctx = multiprocessing.get_context("fork")
    readers: list[Connection] = []
    children: list[BaseProcess] = []
    finished = False
    try:
        for j in range(jobs):
            reader, writer = ctx.Pipe(duplex=False)
            readers.append(reader)
            messages = ((BATCH, work(part)) for part in parts[j::jobs])
            child: BaseProcess = ctx.Process(
                target=_serve, name=f"permit-monitor reader {j + 1}", daemon=True,
                args=(writer, readers, os.getpid(), messages))
            child.start()
            children.append(child)
            writer.close()
        for k in range(len(parts)):
            yield _receive(readers[k % jobs], children[k % jobs], label)[1]
        for reader, child in zip(readers, children):
            _receive(reader, child, label)  # END
        finished = True
    finally:
        for reader in readers:
            reader.close()
        for child in children:
            if not finished:
                child.kill()
            child.join()


def _serve(writer: Connection, readers: list[Connection], parent: int,
           messages: Iterator[tuple]) -> None:
    """A child: send every message of ``messages`` (computed here, lazily), then END, or
    the error that stopped it. ``readers``: the pipe ends the parent reads (closed here,
    so that the parent's closing them breaks this child's pipe)."""
    for reader in readers:
        reader.close()
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    out = _Sender(writer)
    try:
        for message in messages:
            out.send(message)
        out.send((END,))
        out.flush()
    except BrokenPipeError:
        return  # the parent stopped reading: it failed, was interrupted, or is gone
    except IngestError as exc:
        out.send_last((ERROR, str(exc)))
    except Exception:  # noqa: BLE001 - a bug: the parent raises it with this traceback
        out.send_last((BUG, traceback.format_exc()))
    finally:
        out.close()


class _Sender:
    """Writes the child's messages into the pipe from a thread of its own.

    A batch is larger than the pipe's buffer, so a plain write returns only once the
    parent has read nearly all of it, that is once it has stored the batch before: until
    then this process would sit idle. With the write in a thread (which waits with the GIL
    released) the next batch is prepared while the parent stores this one. The queue holds
    one message, so at most one batch more than before exists at a time.
    """

    def __init__(self, writer: Connection):
        self._writer = writer
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write, name="permit-monitor sender",
                                        daemon=True)
        self._thread.start()

    def _write(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:  # after an error, only drain the queue
                try:
                    self._writer.send_bytes(data)
                except BaseException as exc:  # noqa: BLE001 - send() raises it again
                    self._error = exc

    def send(self, message: tuple) -> None:
        """Queue ``message``; raises the error (BrokenPipeError…) of an earlier write."""
        if self._error is not None:
            raise self._error
        self._queue.put(ForkingPickler.dumps(message))

    def flush(self) -> None:
        """Wait until every queued message is written; raises a write's error."""
        self.close()
        if self._error is not None:
            raise self._error

    def send_last(self, message: tuple) -> None:
        try:
            self.send(message)
            self.flush()
        except BrokenPipeError:
            pass

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only; elsewhere
    the child ends at its next write into the broken pipe)."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):
        pass
    if os.getppid() != parent:  # the parent was gone before the request took effect
        os._exit(0)
