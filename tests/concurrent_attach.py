"""One of two processes that settle the same night of alerts at the same moment (``test_target_attach.py``).

    python -m tests.concurrent_attach WORKDIR NAME OTHER BARRIER_KEY

Run with ``DJANGO_SETTINGS_MODULE=tests.settings`` and ``PGDATABASE`` naming the test database. The process

1. writes its PostgreSQL backend pid to ``WORKDIR/NAME.pid``;
2. waits at the barrier: a shared advisory lock on ``BARRIER_KEY``, which the test holds exclusively until both
   processes wait for it, so that both leave it at the same moment;
3. settles the night as a stream route does (:func:`tom_pittgoogle.core.settle.settle`: stored, attached to the
   Target, committed); inside its transaction, once its alerts are stored and attached, it waits (with a bound)
   until it sees the other process's backend blocked by its own (``pg_blocking_pids``), or the other has finished;
4. writes ``WORKDIR/NAME.json``: what it saw, its ``alert_attached`` signals, and the moments it entered and left
   its transaction (``CLOCK_MONOTONIC``, one clock for every process of the machine).

Not named ``test_*.py``: pytest does not collect it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

#: The most seconds a process waits, inside its transaction, for the other to queue behind it.
OVERLAP_BOUND = 60.0


def main(workdir: Path, name: str, other: str, barrier_key: int) -> None:
    import django

    django.setup()
    from django.db import connection

    from tom_pittgoogle.core.attach import alert_attached
    from tom_pittgoogle.core.pubsub import unpack_message
    from tom_pittgoogle.core.rejected import RawMessage
    from tom_pittgoogle.core.settle import settle, sort_outcomes
    from tom_pittgoogle.core.store import DjangoAlertStore

    from .helpers import wait_until
    from .test_target_attach import ztf_night

    packets = ztf_night()[0]
    passed, rejected = sort_outcomes([(RawMessage(f"m{i}", p, {}), unpack_message(p)) for i, p in enumerate(packets)])
    signals: list[str] = []
    alert_attached.connect(lambda sender, alert, **kwargs: signals.append(alert["source_id"]), weak=False)
    report = {"name": name, "blocked_the_other": False, "other_done_first": False}

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        report["backend_pid"] = cursor.fetchone()[0]
    (workdir / f"{name}.pid").write_text(str(report["backend_pid"]))

    with connection.cursor() as cursor:  # the barrier: the test releases both at once
        cursor.execute("SELECT pg_advisory_lock_shared(%s)", [barrier_key])
        cursor.execute("SELECT pg_advisory_unlock_shared(%s)", [barrier_key])
    report["released_at"] = time.clock_gettime(time.CLOCK_MONOTONIC)

    def hold_until_the_other_queues(saved) -> None:
        """Inside the transaction: wait until the other process waits for this one's locks, or has finished."""
        report["inside_at"] = time.clock_gettime(time.CLOCK_MONOTONIC)
        other_pid = int((workdir / f"{other}.pid").read_text())
        with connection.cursor() as cursor:

            def the_other_waits_or_is_done() -> bool:
                cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))", [report["backend_pid"], other_pid])
                report["blocked_the_other"] = cursor.fetchone()[0]
                report["other_done_first"] = (workdir / f"{other}.done").exists()
                return report["blocked_the_other"] or report["other_done_first"]

            wait_until(the_other_waits_or_is_done, timeout=OVERLAP_BOUND, interval=0.01)

    settle(DjangoAlertStore(), passed, rejected, subscription=f"night-{name}",
           with_stored=hold_until_the_other_queues)
    report["committed_at"] = time.clock_gettime(time.CLOCK_MONOTONIC)
    report["signals"] = signals
    (workdir / f"{name}.json").write_text(json.dumps(report))
    (workdir / f"{name}.done").write_text("")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
