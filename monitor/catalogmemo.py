"""The gate's memo of the catalog: what it reads of it whole, kept between decisions for
as long as the catalog has not changed.

A decision of the workflow gate (monitor/gate.py) needs the catalog's small tables the
way a run does — every item's minimum minutes (step_too_fast), the items' four-eyes
policies (same_actor_roles), the users holding the waiver-authorising roles (unpaid_fee),
the items and departments that validate the candidate — and re-reading them is a third of
a decision's statements. The store keeps a counter, ``meta.catalog_version``, that its
own triggers raise on any change to ``items``, ``departments`` or a user's id, roles or
department (migration 0025), whoever makes it: ``catalog load`` in another process, a
grant approved, an SQL session. Each decision reads the counter first, in its own
transaction, and uses what was read at that version, or reads afresh.

What a memo holds was read after its version was, so it is never older than the catalog
the decision saw (at worst newer, by a change committed in between, whose own version
then replaces the memo). No counter (a store without the row): no memo, every read fresh.
The counter starts at a random number, so a store dropped and made again under the same
URL while a server runs does not meet the memo of the old one at the same count.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, select

from .models import Meta

KEY = "catalog_version"  # written by the triggers of migration 0025, never by Python

_VERSION = select(Meta.value).where(Meta.key == KEY)


class CatalogMemo:
    """One store's memo (a :class:`~monitor.gateguard.Guard` holds one): shared by the
    gate's threads; a value being filled twice by two of them is the same value."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: str | None = None
        self._values: dict[Any, Any] = {}

    def current(self, conn: Connection) -> dict[Any, Any] | None:
        """The memo for the catalog as ``conn`` sees it now (read the version first in the
        decision's transaction); ``None``: no version, read everything afresh."""
        version = conn.scalar(_VERSION)
        if version is None:
            return None
        with self._lock:
            if version != self._version:
                self._version, self._values = version, {}
            return self._values
