"""Run by tests/test_test_database_teardown.py in a pytest session of its own (not collected otherwise): a thread
that is still alive at the end of the session holds a database connection, as a worker thread of a stream can."""

import threading

import pytest
from django.db import connection

_session_ends = threading.Event()


def _hold_a_connection(opened: threading.Event) -> None:
    connection.ensure_connection()
    opened.set()
    _session_ends.wait()


@pytest.mark.django_db(transaction=True)
def test_a_thread_holds_its_connection_to_the_end():
    opened = threading.Event()
    threading.Thread(target=_hold_a_connection, args=(opened,), daemon=True).start()
    assert opened.wait(timeout=30)
