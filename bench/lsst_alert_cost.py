"""Benchmark: where the ingester's CPU goes for one real-size LSST alert, step by step, in batches of two sizes.

    .venv/bin/python bench/lsst_alert_cost.py [--n 5000] [--batches 500,75]

The visit bench's LSST alerts (``bench/visit_bursts.py``: the newest schema, 30 previous sources and 30 forced
measurements each, 8.3 KB) are taken through the ingester's steps in this process, on PostgreSQL, without Pub/Sub
(``visit_bursts.py`` measures the whole process against the bare client):

  decode          ``decode_alert``: the Confluent wire-format Avro read into a record (cavro)
  map/validate    ``lighten_alert``: the common fields, scores and light curve, every value validated
  store           ``DjangoAlertStore.save_messages`` in the batch's transaction (COPY, then one INSERT)
  attach          ``attach_alerts``: the batch matched against the followed Targets (none here) in that transaction
  commit + stamp  the commit, and the commit time and TOM leg written into the new rows (``stamp_committed``)

It prints the CPU milliseconds per alert (``time.process_time()``, median of ``--rounds``) of each step for a batch
size of 500 (a burst) and of 75 (a trickle), into an emptied alert table.
No test asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stream_ingest import USER_PROJECT, _ensure_database  # noqa: E402
from bench.visit_bursts import lsst_packets  # noqa: E402

TOPIC = "projects/pitt-alert-broker/topics/lsst-alerts"
STEPS = ("decode", "map/validate", "store", "attach", "commit + stamp")


def one_round(packets: list[bytes], batch_size: int) -> dict[str, float]:
    """CPU milliseconds per alert of each step, over ``packets`` in batches of ``batch_size``."""
    from django.db import transaction

    from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
    from tom_pittgoogle.core.alerts.surveys import LSST
    from tom_pittgoogle.core.attach import attach_alerts
    from tom_pittgoogle.core.latency import stamp_committed
    from tom_pittgoogle.core.rejected import RawMessage
    from tom_pittgoogle.core.store import DjangoAlertStore
    from tom_pittgoogle.models import Alert

    Alert.objects.all().delete()
    store = DjangoAlertStore()
    spent = dict.fromkeys(STEPS, 0.0)
    published = datetime.now(UTC)
    attributes = {"kafka.timestamp": str(int(time.time() * 1000) - 30_000)}
    for start in range(0, len(packets), batch_size):
        batch = packets[start:start + batch_size]
        clock = time.process_time()
        records = [decode_alert(packet, TOPIC) for packet in batch]
        spent["decode"] += time.process_time() - clock
        clock = time.process_time()
        alerts = [lighten_alert(record, LSST, attributes=attributes) for record in records]
        spent["map/validate"] += time.process_time() - clock
        messages = [RawMessage(f"m{start + i}", packet, attributes, published) for i, packet in enumerate(batch)]
        clock = time.process_time()
        with transaction.atomic():
            store.save_messages(alerts, messages, subscription=f"projects/{USER_PROJECT}/subscriptions/cost")
            stored = time.process_time()
            spent["store"] += stored - clock
            attach_alerts(alerts, route="cost")
            clock = time.process_time()
            spent["attach"] += clock - stored
        stamp_committed([(alert["survey"], str(alert["source_id"])) for alert in alerts], datetime.now(UTC))
        spent["commit + stamp"] += time.process_time() - clock
    return {step: 1000 * seconds / len(packets) for step, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="alerts per round (default 5000)")
    parser.add_argument("--batches", default="500,75", help="batch sizes (default 500,75)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    database = os.environ.setdefault("PITTGOOGLE_BENCH_DB", "pittgoogle_bench")
    _ensure_database(database)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.settings", PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    packets = lsst_packets(args.n, seed=3)
    one_round(packets[:500], 100)  # warm: schema parsed, astropy's leap seconds checked, queries prepared
    print(f"{args.n} LSST alerts of {sum(map(len, packets)) / len(packets) / 1024:.1f} KB; CPU ms per alert, "
          f"median of {args.rounds} rounds; load average {os.getloadavg()[0]:.1f}")
    for size in (int(value) for value in args.batches.split(",")):
        rounds = [one_round(packets, size) for _ in range(args.rounds)]
        figures = {step: statistics.median(r[step] for r in rounds) for step in STEPS}
        parts = "  ".join(f"{step} {value:.3f}" for step, value in figures.items())
        print(f"batches of {size:>4}: {parts}  total {sum(figures.values()):.3f}")


if __name__ == "__main__":
    main()
