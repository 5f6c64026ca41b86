"""The leases a PostgreSQL store took, renewed or found held by its own commits, with
their expiry on the database's clock, so that ``lease_held`` answers without a round trip.

Only the database's clock says when a lease expired, and only an expired lease can be
claimed by another worker (``store.pg_sql.CLAIM``): a lease this store knows to run
until E on that clock is held until E, unless this process let it go (it forgets it
then) or a user cancelled the execution meanwhile (at most one more step body, as
before a commit). Closer than ``MARGIN`` to E, or unknown, the store asks the database.
Whatever this says, a commit checks its fence in its own transaction: that is what
stops the writes of a lease that was lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

#: Seconds a known lease must still run (by this host's estimate of the database's
#: clock) to be answered from memory; also covers the error of that estimate.
MARGIN = 1.0


class HeldLeases:
    """(execution id -> fence, expiry on the database's clock) of this store's leases."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, float]] = {}
        self._skew = 0.0  # the database's clock minus this host's, as last measured
        self._lock = threading.Lock()

    def took(self, leases: Iterable[tuple[str, int]], expires: float, db_now: float) -> None:
        """``leases`` (id, fence) run until ``expires``, as a transaction that began at
        ``db_now`` on the database's clock wrote them."""
        with self._lock:
            self._skew = db_now - time.time()
            for execution_id, fence in leases:
                self._held[execution_id] = (fence, expires)

    def found(self, execution_id: str, fence: int, expires: float) -> None:
        """A commit under lease ``fence`` found it running until ``expires``."""
        with self._lock:
            self._held[execution_id] = (fence, expires)

    def forget(self, execution_ids: Iterable[str]) -> None:
        with self._lock:
            for execution_id in execution_ids:
                self._held.pop(execution_id, None)

    def holds(self, execution_id: str, fence: int) -> bool:
        """Whether lease ``fence`` is known to run for ``MARGIN`` seconds more."""
        found = self._held.get(execution_id)
        return found is not None and found[0] == fence and found[1] - (time.time() + self._skew) > MARGIN
