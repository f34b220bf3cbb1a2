"""Benchmark: what following the TOM's Targets adds to the ingester's CPU per alert.

    .venv/bin/python bench/target_matching.py [--n 5000] [--targets 0,1000,100000]     (also run by make bench)

The ingester's work per batch, in this process, on PostgreSQL: decode each real-size ZTF packet
(``unpack_message``), then the one store path (``settle``: store the batch, match it against the Targets' HEALPix
index and attach what belongs to a Target), in batches of the ingester's size. Pub/Sub is left out (it is the same
with any number of Targets; ``stream_ingest.py`` measures it). The same packets are stored into an emptied alert
table with 0, 1,000 and 100,000 Targets spread over the sky, then with 0 again (the drift of the machine during
the run). It prints the CPU milliseconds per alert (``time.process_time()``) for each and the difference against
the first run with none. No test asserts a time.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stream_ingest import _ensure_database, real_size_packets  # noqa: E402


def spread_targets(count: int, seed: int = 19) -> None:
    """Make the TOM hold ``count`` sidereal Targets, uniform on the sky, and index them."""
    from tom_targets.models import Target

    from tom_pittgoogle.core.matching import index_all_targets

    have = Target.objects.count()
    rng = random.Random(seed + have)
    new = []
    for i in range(have, count):
        ra, dec = rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1)))
        new.append(Target(name=f"bench-{i}", type="SIDEREAL", ra=ra, dec=dec, epoch=2000))
    Target.objects.bulk_create(new, batch_size=5000)
    if count < have:
        Target.objects.all().delete()
        spread_targets(count, seed)
        return
    index_all_targets()


def ingest_cpu(packets: list[bytes], batch_size: int) -> float:
    """CPU milliseconds per alert for decoding and settling ``packets`` into an empty alert table."""
    from tom_pittgoogle.core.pubsub import unpack_message
    from tom_pittgoogle.core.rejected import RawMessage
    from tom_pittgoogle.core.settle import settle, sort_outcomes
    from tom_pittgoogle.core.store import DjangoAlertStore
    from tom_pittgoogle.models import Alert, AttachedAlert

    Alert.objects.all().delete()
    AttachedAlert.objects.all().delete()
    store = DjangoAlertStore()
    start = time.process_time()
    for first in range(0, len(packets), batch_size):
        messages = [(RawMessage(str(first + i), data, {}), unpack_message(data, topic="ztf-loop"))
                    for i, data in enumerate(packets[first:first + batch_size])]
        passed, rejected = sort_outcomes(messages)
        settle(store, passed, rejected, subscription="bench")
    cpu = time.process_time() - start
    stored = Alert.objects.count()
    assert stored == len(packets), f"stored {stored} of {len(packets)}"
    return 1000 * cpu / len(packets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="packets per measurement (default 5000)")
    parser.add_argument("--targets", default="0,1000,100000", help="Target counts (default 0,1000,100000)")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    database = os.environ.setdefault("PITTGOOGLE_BENCH_DB", "pittgoogle_bench_targets")
    _ensure_database(database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], cwd=ROOT, check=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    import django

    django.setup()
    packets, origin = real_size_packets(args.n)
    print(f"{args.n} packets ({origin}), batches of {args.batch_size}")
    counts = [int(value) for value in args.targets.split(",")]
    ingest_cpu(packets[: args.batch_size], args.batch_size)  # warm up: imports, schema parsing, connections
    results = []
    for count in [*counts, counts[0]]:
        spread_targets(count)
        results.append((count, ingest_cpu(packets, args.batch_size)))
    baseline = results[0][1]
    print(f"{'Targets':>8}  {'CPU ms/alert':>12}  {'vs first 0':>10}")
    for count, cpu in results:
        print(f"{count:>8}  {cpu:>12.3f}  {cpu - baseline:>+10.3f}")
    print(f"drift (the last {counts[0]} against the first): {results[-1][1] - baseline:+.3f} ms/alert")


if __name__ == "__main__":
    main()
