"""Test utilities: waiting on a condition with a bound, and holding the alerts table so that a running ingester's
alerts stay in flight (received, not yet stored) for as long as a test needs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import psycopg
from django.db import connection


def wait_until(predicate: Callable[[], object], timeout: float = 90, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; return its last value as a bool."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def _connect() -> psycopg.Connection:
    """A connection of its own to the test database (not Django's: that one belongs to the code under test)."""
    params = connection.settings_dict
    return psycopg.connect(host=params["HOST"], port=params["PORT"], dbname=params["NAME"], user=params["USER"],
                           password=params["PASSWORD"] or None, autocommit=True)


class AlertsTableLock:
    """``LOCK TABLE tom_pittgoogle_alert IN EXCLUSIVE MODE`` from a connection of its own: reads go on, every
    insert waits. An ingester then holds what it receives in flight until :meth:`release`."""

    def __init__(self) -> None:
        self._locker = _connect()
        self._locker.autocommit = False
        self._locker.execute("LOCK TABLE tom_pittgoogle_alert IN EXCLUSIVE MODE")
        self._observer = _connect()

    def inserts_waiting(self) -> int:
        """How many sessions are waiting on the lock to insert alerts."""
        row = self._observer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() "
            "AND query ILIKE 'INSERT INTO \"tom_pittgoogle_alert\"%%'"
        ).fetchone()
        return row[0]

    def release(self) -> None:
        if not self._locker.closed:
            self._locker.rollback()
            self._locker.close()

    def close(self) -> None:
        self.release()
        self._observer.close()


@contextlib.contextmanager
def alerts_table_locked() -> Iterator[AlertsTableLock]:
    lock = AlertsTableLock()
    try:
        yield lock
    finally:
        lock.close()
