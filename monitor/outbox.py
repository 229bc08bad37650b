"""The outbox: notifications written in the same transaction as the state change they
report, then delivered by ``notify flush`` through the sinks named in config.yaml.

Nothing is lost if the process dies between the two: a message is ``pending`` until a
sink has accepted it. A sink that fails is retried with exponential backoff
(``attempts``, ``next_attempt_at``, ``last_error``); after ``notify.max_attempts``, or at
once for an undeliverable message (no phone number), it is ``failed`` and kept, with its
error, for ``notify list --failed``. Each delivery is recorded in the trail (``notified``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from . import lease, trail
from .config import NotifyConfig
from .masking import mask
from .models import Alert, OutboxMessage, User
from .sinks import open_sink
from .sinks.base import DeliveryError, Message, Sink, Undeliverable
from .bulkcopy import insert_many
from .sqllist import one_of
from .trail import Entry

FLUSH_BATCH = 500
DUE = ("pending", "sending")  # sending: claimed by a flusher; due again when its lease ends
LEASE = timedelta(minutes=10)
USER_ADDRESS = {"sms": User.phone, "email": User.email}  # channel → the catalog's address


@dataclass(frozen=True)
class Outgoing:
    """One message to queue: to a catalog user (``recipient``) on ``channel``; ``address``
    for a channel without a catalog address; ``due``: not delivered before then."""

    alert_id: int | None
    recipient: str
    subject: str
    text: str
    channel: str = "sms"
    address: str | None = None
    due: datetime | None = None


ADDRESS_CHUNK = 500  # user ids per IN (...) list


def enqueue(conn: Connection, at: datetime, alert_id: int | None, recipients: Iterable[str],
            subject: str, text: str, channel: str = "sms", address: str | None = None,
            due: datetime | None = None) -> int:
    """Queue ``text`` for each recipient (catalog user id) in the caller's transaction; an
    SMS goes to the user's phone in the catalog, an e-mail to the user's e-mail address,
    other channels to ``address``. ``due``: not delivered before then (quiet hours);
    default ``at``."""
    return enqueue_many(conn, at, [Outgoing(alert_id, r, subject, text, channel, address, due)
                                   for r in sorted(set(recipients))])


def enqueue_many(conn: Connection, at: datetime, messages: list[Outgoing]) -> int:
    """Queue ``messages`` in this order (as :func:`enqueue` each), with one look-up of the
    recipients' addresses per channel and one insert: a pass that tells many people does
    not pay two round trips a message."""
    if not messages:
        return 0
    found: dict[str, dict[str, Any]] = {}
    for channel, column in USER_ADDRESS.items():
        users = sorted({m.recipient for m in messages if m.channel == channel})
        found[channel] = {}
        for start in range(0, len(users), ADDRESS_CHUNK):
            found[channel].update(conn.execute(
                select(User.id, column).where(one_of(User.id, users[start:start + ADDRESS_CHUNK])))
                .tuples().all())
    insert_many(conn, OutboxMessage.__table__, [{
        "created_at": at, "alert_id": m.alert_id, "recipient": m.recipient,
        "channel": m.channel,
        "address": found[m.channel].get(m.recipient) if m.channel in found else m.address,
        "subject": m.subject,
        "text": mask(m.text),  # a run's error may quote a URL or a server's answer
        "status": "pending", "attempts": 0, "next_attempt_at": m.due or at}
        for m in messages])
    return len(messages)


@dataclass
class Flushed:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    # "sink name → where": messages delivered there (monitor.sinks: Sink.where)
    by_sink: dict[str, int] = field(default_factory=dict)
    network: bool = False  # a sink that reaches people (webhook, smtp) serves some channel


RETRIES = ("max_attempts", "backoff_seconds", "backoff_max_seconds")  # a county may set


def backoff(notify: NotifyConfig, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base · 2^(n-1), capped."""
    return timedelta(seconds=min(notify.backoff_seconds * 2 ** (attempts - 1),
                                 notify.backoff_max_seconds))


def _sinks(notify: NotifyConfig, base_dir, channels: Mapping[str, str] | None = None
           ) -> dict[str, Sink]:
    """Channel → its open sink: ``notify.channels``, or a county's own ``channels``."""
    return {channel: open_sink(name, notify.sinks[name].type, notify.sinks[name].options,
                               base_dir)
            for channel, name in (notify.channels if channels is None else channels).items()}


def _region(conn: Connection, row: Any) -> str | None:
    """The county a message is of: its alert's, else its recipient's (a catalog user)."""
    region = conn.scalar(select(Alert.region).where(Alert.id == row.alert_id)) \
        if row.alert_id is not None else None
    return region or conn.scalar(select(User.region).where(User.id == row.recipient))


def _message(row: Any) -> Message:
    return Message(row.id, row.created_at, row.alert_id, row.recipient, row.channel,
                   row.address, row.subject, row.text)


def _claim(engine: Engine, message_id: int, now: datetime, regional: bool = False
           ) -> tuple[Any, str | None]:
    """Take one due message for this flusher (a lease: a flusher that dies mid-delivery
    leaves it ``sending`` until the lease ends, then it is due again); (the row, its
    county when ``regional``, else None), or (None, None)."""
    due = (OutboxMessage.id == message_id, OutboxMessage.status.in_(DUE),
           OutboxMessage.next_attempt_at <= now)
    with engine.begin() as conn:
        lease.fence(conn)  # a flusher that lost its lease claims nothing more
        claimed = conn.execute(update(OutboxMessage).where(*due).values(
            status="sending", next_attempt_at=now + LEASE)).rowcount
        if claimed != 1:
            return None, None
        row = conn.execute(select(OutboxMessage).where(OutboxMessage.id == message_id)).one()
        return row, (_region(conn, row) if regional else None)


def _send(sinks: dict[str, Sink], row: Any, out: Flushed) -> tuple[str | None,
                                                                   DeliveryError | None]:
    sink = sinks.get(row.channel)
    try:
        if sink is None:
            raise Undeliverable(f"no sink for channel '{row.channel}' (notify.channels)")
        sink.send(_message(row))
    except DeliveryError as exc:
        return (sink.name if sink else None), exc
    where = f"{sink.name} → {sink.where}"
    out.by_sink[where] = out.by_sink.get(where, 0) + 1
    return sink.name, None


def _record(engine: Engine, notify: NotifyConfig, row: Any, sink: str | None,
            error: DeliveryError | None, now: datetime, out: Flushed) -> None:
    attempts = row.attempts + 1
    with engine.begin() as conn:
        trail.lock(conn)
        if error is None:
            conn.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(
                attempts=attempts, status="sent", sent_at=now, sink=sink, last_error=None))
            trail.append(conn, now, [Entry("notified", row.alert_id, trail.SYSTEM, {
                "outbox_id": row.id, "recipient": row.recipient, "channel": row.channel,
                "sink": sink, "subject": row.subject})])
            out.sent += 1
            return
        final = isinstance(error, Undeliverable) or attempts >= notify.max_attempts
        conn.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(
            attempts=attempts, last_error=mask(str(error))[:1000], sink=sink,
            status="failed" if final else "pending",
            next_attempt_at=now if final else now + backoff(notify, attempts)))
    out.errors.append(f"message {row.id} to {row.recipient}: {error}")
    if final:
        out.failed += 1
    else:
        out.retrying += 1


def flush(engine: Engine, notify: NotifyConfig, base_dir, now: datetime,
          regions: Mapping[str, Any] | None = None) -> Flushed:
    """Deliver every message due by ``now``: claim it, send it outside any transaction
    (a slow sink holds no lock), record the outcome. ``regions`` (config ``regions``):
    a county's own ``channels`` deliver the messages of its county (its alert's region,
    else its recipient's), its other channels those of ``notify.channels``; its own
    retry settings (``max_attempts``, ``backoff_seconds``, ``backoff_max_seconds``)
    decide when they are tried again, else ``notify``'s."""
    sinks = _sinks(notify, base_dir)
    own = {code: {**sinks, **_sinks(notify, base_dir, r.channels)}
           for code, r in (regions or {}).items() if r.channels}
    retries = {code: r.notify(notify) for code, r in (regions or {}).items()
               if set(r.delivery) & set(RETRIES)}
    opened = [*sinks.values(), *(s for chans in own.values() for ch, s in chans.items()
                                 if s is not sinks.get(ch))]
    out = Flushed(network=any(s.NETWORK for s in opened))
    try:
        last = 0
        while True:
            with engine.connect() as conn:
                ids = conn.scalars(select(OutboxMessage.id).where(
                    OutboxMessage.status.in_(DUE), OutboxMessage.next_attempt_at <= now,
                    OutboxMessage.id > last).order_by(OutboxMessage.id).limit(FLUSH_BATCH)).all()
            for message_id in ids:
                row, region = _claim(engine, message_id, now, bool(own or retries))
                if row is not None:
                    sink, error = _send(own.get(region or "", sinks), row, out)
                    _record(engine, retries.get(region or "", notify), row, sink, error, now,
                            out)
            if len(ids) < FLUSH_BATCH:
                return out
            last = ids[-1]
    finally:
        for each in opened:
            each.close()


def retry(engine: Engine, ids: list[int], now: datetime, by: str = trail.SYSTEM,
          channel: str | None = None) -> set[int]:
    """Failed messages among ``ids`` back to ``pending``, due ``now``, attempts from zero
    (the address may have been fixed since: it is read from the catalog again); returns
    the ids queued again. Each is on the trail (``message_requeued``) with who asked."""
    with engine.begin() as conn:
        failed = set(conn.scalars(select(OutboxMessage.id).where(
            OutboxMessage.id.in_(ids), OutboxMessage.status == "failed")))
        for row in conn.execute(select(OutboxMessage).where(OutboxMessage.id.in_(failed))):
            field = USER_ADDRESS.get(row.channel)
            address = conn.scalar(select(field).where(User.id == row.recipient)) \
                if field is not None else row.address
            conn.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(
                status="pending", attempts=0, next_attempt_at=now, address=address))
        entries = [Entry("message_requeued", row.alert_id, by, {
            "message_id": row.id, "recipient": row.recipient, "channel": row.channel,
            "last_error": mask(row.last_error or "")[:200]}, channel)
            for row in conn.execute(select(OutboxMessage).where(OutboxMessage.id.in_(failed))
                                    .order_by(OutboxMessage.id))]
        trail.append(conn, now, entries)
    return failed


def list_messages(engine: Engine, *, status: str | None = None,
                  undelivered: bool = False, limit: int | None = None) -> Iterator[Any]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if status:
        query = query.where(OutboxMessage.status == status)
    elif undelivered:
        query = query.where(OutboxMessage.status != "sent")
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        yield from conn.execute(query)
