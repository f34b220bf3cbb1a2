"""Benchmark: does the TOM keep up with a Rubin visit? Bursts of LSST alerts into ``pittgoogle_stream``.

    .venv/bin/python bench/visit_bursts.py [--burst 10000] [--bursts 3] [--gap 40] [--rate 300] [--steady 60]
    (or: make bench)

Rubin publishes about 10,000 alerts per visit, a visit every ~40 s. This starts the Pub/Sub emulator (full JIT,
as bench/stream_ingest.py) and, for each consumer in turn, on a fresh subscription of one LSST topic:

  bare      the bare google-cloud-pubsub streaming pull, acknowledge-only callback (the same-run baseline)
  1 ingester / 2 ingesters   ``manage.py pittgoogle_stream`` processes on that one subscription, into PostgreSQL

(the ingesters with a lease of ``--lease`` seconds, ``PITTGOOGLE_STREAM_LEASE_SECONDS``, 60 by default here: see
docs/guide/performance.md) it publishes ``--bursts`` bursts of ``--burst`` real-size LSST alerts
(tom_pittgoogle/demo/sample_lsst.py), all at once, ``--gap`` seconds apart, then a steady ``--rate`` alerts/s for
``--steady`` seconds. Per burst it prints
the time from the burst's first publication to the last alert stored, the TOM leg (Pub/Sub publication to
commit, from the stored ``broker_to_tom``) p50/p95/p99, the consumers' CPU per alert (from /proc, all their
threads, over the burst) and their resident memory after the burst and at its peak; then the ratios of CPU per
alert to the bare client's. The alerts stored are counted against those published (nothing lost or duplicated).
With ``PITTGOOGLE_BENCH_PYSPY=/path/to/py-spy`` each consumer runs under py-spy (``$TMPDIR/pyspy-visit-*.txt``, for
a profile; the CPU figures are then not the consumers'). No test asserts a time.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stream_ingest import (  # noqa: E402 - the bench's own helpers, reused
    ROOT,
    USER_PROJECT,
    _ensure_database,
    _process_cpu_seconds,
    _setup_django,
    full_jit_emulator,
)

LSST_PROJECT = "pitt-alert-broker"


#: Distinct sample alerts per set: the sample's exposure moves a day per index, and a later one is in the future
#: (the ingester rightly rejects it); the others are copies of these with their own diaSourceId.
TEMPLATES = 200


#: Placeholder id serialized into each template where its alertId and diaSourceId go, then patched per packet:
#: every id from here to the largest Avro long has a 10-byte zig-zag varint, so a patch never moves a byte.
_PLACEHOLDER_ID = 5_000_000_000_000_000_000


def _avro_long(value: int) -> bytes:
    """``value`` as Avro writes a long: zig-zag, then a little-endian base-128 varint."""
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value & ~0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def lsst_packets(count: int, seed: int) -> list[bytes]:
    """``count`` distinct LSST alerts of the newest schema, with a season's history (real-size, not minimal).

    ``TEMPLATES`` alerts are built and serialized once; each packet is a template's bytes with its own id patched
    into the alert id and the diaSource id (same length, see ``_PLACEHOLDER_ID``): a packet costs a copy.
    """
    from tom_pittgoogle.demo.sample_lsst import lsst_schema_versions, make_lsst_alert, serialize_wire_format

    major, minor = lsst_schema_versions()[-1]
    placeholder = _avro_long(_PLACEHOLDER_ID)
    templates = []  # (bytes, offsets of the placeholder)
    for index in range(min(count, TEMPLATES)):
        record = make_lsst_alert(major, minor, index=index, seed=seed, n_previous=30, n_forced=30)
        record["diaSource"] = dict(record["diaSource"], diaSourceId=_PLACEHOLDER_ID)
        for key in ("alertId", "diaSourceId"):  # 7.x has alertId, older majors a top-level diaSourceId
            if key in record:
                record[key] = _PLACEHOLDER_ID
        packet = serialize_wire_format(record, major, minor)
        offsets = [match.start() for match in re.finditer(re.escape(placeholder), packet)]
        if len(offsets) != 2:
            raise RuntimeError(f"the placeholder id appears {len(offsets)} times in a template, not twice")
        templates.append((packet, offsets))
    packets = []
    for index in range(count):
        packet, offsets = templates[index % len(templates)]
        patched = bytearray(packet)
        source_id = _avro_long(_PLACEHOLDER_ID + 1 + seed * 10_000_000 + index)
        for offset in offsets:
            patched[offset:offset + len(source_id)] = source_id
        packets.append(bytes(patched))
    return packets


def bare_consumer(subscription: str) -> None:
    """Child process: the bare client, ack-only, until SIGTERM; then prints how many it acknowledged."""
    import threading

    from tom_pittgoogle.core.pubsub import subscriber_client

    count, lock, stop = [0], threading.Lock(), threading.Event()

    def callback(message) -> None:
        message.ack()
        with lock:
            count[0] += 1

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client = subscriber_client()
    future = client.subscribe(f"projects/{USER_PROJECT}/subscriptions/{subscription}", callback)
    print("ready", flush=True)
    stop.wait()
    future.cancel()
    print(f"acknowledged {count[0]}", flush=True)


def _memory_mib(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory of ``pid`` (MiB)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def _profiled(command: list[str], name: str) -> list[str]:
    """``command`` under py-spy when ``PITTGOOGLE_BENCH_PYSPY`` names its executable: collapsed stacks of every
    thread's non-idle samples in ``$TMPDIR/pyspy-visit-<name>.txt`` (the CPU figures are then py-spy's own)."""
    profiler = os.environ.get("PITTGOOGLE_BENCH_PYSPY")
    if not profiler:
        return command
    output = Path(tempfile.gettempdir()) / f"pyspy-visit-{name}.txt"
    return [profiler, "record", "--format", "raw", "--threads", "--nonblocking", "--rate", "250", "--output",
            str(output), "--", *command]


class Consumers:
    """The consumer processes of one configuration, on one subscription."""

    def __init__(self, kind: str, count: int, subscription: str, env: dict) -> None:
        if kind == "bare":
            command = [sys.executable, __file__, "--bare", subscription]
        else:
            command = [sys.executable, "-m", "django", "pittgoogle_stream", "--subscription", subscription,
                       "--survey", "lsst", "--progress-interval", "30"]
        self.processes = [subprocess.Popen(_profiled(command, f"{kind}{count}-{index}"), cwd=ROOT, env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                          for index in range(count)]
        if kind == "bare":
            for process in self.processes:
                assert process.stdout.readline().strip() == "ready"
        else:
            time.sleep(8)  # django setup and the streaming pull opened
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"a consumer ended at once: {process.stderr.read()[-2000:]}")

    def _pids(self) -> list[int]:
        """The consumers' own process ids (under py-spy, its child's)."""
        if not os.environ.get("PITTGOOGLE_BENCH_PYSPY"):
            return [process.pid for process in self.processes]
        pids = []
        for process in self.processes:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
            pids.append(int(children[0]) if children else process.pid)
        return pids

    def cpu(self) -> float:
        return sum(_process_cpu_seconds(pid) for pid in self._pids())

    def memory(self) -> tuple[float, float]:
        memories = [_memory_mib(pid) for pid in self._pids()]
        return sum(m[0] for m in memories), max(m[1] for m in memories)

    def stop(self) -> list[str]:
        for pid in self._pids():  # py-spy writes its profile once its child has ended
            os.kill(pid, signal.SIGTERM)
        return [process.communicate(timeout=300)[0] for process in self.processes]


def stored_stats(subscription: str, since) -> tuple[int, float | None, list[float | None]]:
    """How many alerts of ``subscription`` were committed since ``since``, the last commit's time and the
    TOM leg's p50/p95/p99 (percentile_cont, as the status page computes them)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), extract(epoch FROM max(committed_at)), "
            "percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY broker_to_tom) "
            "FROM tom_pittgoogle_alert WHERE subscription LIKE %s AND committed_at >= %s",
            [f"%/{subscription}", since])
        count, last, percentiles = cursor.fetchone()
    return int(count), (float(last) if last is not None else None), list(percentiles or [None, None, None])


def wait_for_acks(consumers: Consumers, kind: str, subscription: str, expected: int, since, bound: float) -> None:
    """Until the ingesters stored ``expected`` alerts since ``since`` (or the bare client's CPU settles)."""
    deadline = time.monotonic() + bound
    if kind == "bare":
        previous = -1.0
        while time.monotonic() < deadline:
            time.sleep(2)
            now = consumers.cpu()
            if now - previous < 0.02:  # idle: everything delivered has been acknowledged
                return
            previous = now
        return
    while time.monotonic() < deadline and stored_stats(subscription, since)[0] < expected:
        time.sleep(0.5)


def publish_all(publisher, topic: str, packets: list[bytes]) -> None:
    futures = [publisher.publish(topic, packet) for packet in packets]
    for future in futures:
        future.result(timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=10_000, help="alerts per burst (default 10000)")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--gap", type=float, default=40.0, help="seconds between bursts (default 40)")
    parser.add_argument("--rate", type=int, default=300, help="steady alerts per second (default 300)")
    parser.add_argument("--steady", type=float, default=60.0, help="seconds of the steady rate (default 60)")
    parser.add_argument("--configs", default="bare,1,2", help="consumers to run: bare, 1 and/or 2 ingesters")
    parser.add_argument("--lease", type=int, default=60,
                        help="the ingesters' PITTGOOGLE_STREAM_LEASE_SECONDS (default 60, as recommended for a Rubin "
                             "visit; the product's default of 10 has bursts of 10,000 delivered again and again)")
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_consumer(args.bare)
        return

    database = os.environ.setdefault("PITTGOOGLE_BENCH_DB", "pittgoogle_bench")
    _ensure_database(database)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.settings", GOOGLE_CLOUD_PROJECT=USER_PROJECT,
               PYTHONPATH=str(ROOT), PITTGOOGLE_BENCH_LEASE_SECONDS=str(args.lease))
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    _setup_django()
    from datetime import UTC, datetime

    from tom_pittgoogle.models import Alert

    configs = args.configs.split(",")
    start = time.perf_counter()
    # The same alerts for each configuration: each has a fresh subscription and starts from an empty table.
    bursts = [lsst_packets(args.burst, seed=10 + index) for index in range(args.bursts)]
    steady = lsst_packets(int(args.rate * args.steady), seed=9)
    size = sum(map(len, bursts[0])) / args.burst / 1024
    print(f"{args.bursts} bursts of {args.burst} LSST alerts ({size:.1f} KB each), {args.gap:g} s apart, then "
          f"{args.rate}/s for {args.steady:g} s; the ingesters' lease {args.lease} s; packets built in "
          f"{time.perf_counter() - start:.0f} s")

    results: dict[str, dict] = {}
    with full_jit_emulator() as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = env["PUBSUB_EMULATOR_HOST"] = emulator.host
        from tom_pittgoogle.core.pubsub import publisher_client, subscriber_client

        publisher, subscriber = publisher_client(), subscriber_client()
        topic = f"projects/{LSST_PROJECT}/topics/lsst-visits-{uuid.uuid4().hex[:8]}"
        publisher.create_topic(name=topic)
        for config in configs:
            Alert.objects.all().delete()
            kind, count = ("bare", 1) if config == "bare" else ("ingester", int(config))
            subscription = f"visits-{config}-{uuid.uuid4().hex[:8]}"
            subscriber.create_subscription(name=f"projects/{USER_PROJECT}/subscriptions/{subscription}",
                                           topic=topic, ack_deadline_seconds=60)
            label = "bare client" if kind == "bare" else f"{count} ingester{'s' * (count > 1)}"
            consumers = Consumers(kind, count, subscription, env)
            rows = []
            published = 0
            for index, packets in enumerate(bursts):
                since = datetime.now(UTC)
                cpu, wall = consumers.cpu(), time.perf_counter()
                publish_all(publisher, topic, packets)
                published += len(packets)
                wait_for_acks(consumers, kind, subscription, len(packets), since, bound=300)
                used = consumers.cpu() - cpu
                stored, last, percentiles = (stored_stats(subscription, since) if kind != "bare"
                                             else (len(packets), None, [None] * 3))
                rss, peak = consumers.memory()
                rows.append({"cpu_ms": 1000 * used / len(packets), "stored": stored, "percentiles": percentiles,
                             "store_s": (last - since.timestamp()) if last else None, "rss": rss, "peak": peak})
                tom = "/".join("-" if p is None else f"{p:.1f}" for p in percentiles)
                took = "-" if rows[-1]["store_s"] is None else f"{rows[-1]['store_s']:.1f} s"
                print(f"{label:<12} burst {index + 1}: last stored after {took:>8}  TOM leg p50/p95/p99 {tom} s  "
                      f"CPU {rows[-1]['cpu_ms']:.3f} ms/alert  RSS {rss:.0f} MiB (peak {peak:.0f})  "
                      f"stored {stored}/{len(packets)}", flush=True)
                rest = args.gap - (time.perf_counter() - wall)
                if index + 1 < len(bursts) and rest > 0:
                    time.sleep(rest)
            # The steady rate: ``rate`` alerts each second, for ``steady`` seconds.
            since = datetime.now(UTC)
            cpu = consumers.cpu()
            packets = steady
            tick = time.perf_counter()
            for second in range(0, len(packets), args.rate):
                publish_all(publisher, topic, packets[second:second + args.rate])
                tick += 1.0
                time.sleep(max(0.0, tick - time.perf_counter()))
            published += len(packets)
            wait_for_acks(consumers, kind, subscription, len(packets), since, bound=300)
            used = consumers.cpu() - cpu
            stored, last, percentiles = (stored_stats(subscription, since) if kind != "bare"
                                         else (len(packets), None, [None] * 3))
            steady_row = {"cpu_ms": 1000 * used / len(packets), "percentiles": percentiles, "stored": stored}
            tom = "/".join("-" if p is None else f"{p:.1f}" for p in percentiles)
            print(f"{label:<12} steady {args.rate}/s: TOM leg p50/p95/p99 {tom} s  CPU {steady_row['cpu_ms']:.3f} "
                  f"ms/alert  stored {stored}/{len(packets)}", flush=True)
            outputs = consumers.stop()
            if kind != "bare":
                total = Alert.objects.count()
                print(f"{label:<12} total: {total} rows for {published} published "
                      f"({'nothing lost or duplicated' if total == published else 'MISMATCH'})")
                for output in outputs:  # each ingester's summary: redeliveries show as duplicates
                    done = [line for line in output.splitlines() if line.startswith("done in")]
                    print(f"{'':<12} {done[-1] if done else output.strip().splitlines()[-1:]}")
            else:
                print(f"{label:<12} total: {' '.join(o.strip().splitlines()[-1] for o in outputs)} "
                      f"for {published} published")
            results[config] = {"bursts": rows, "steady": steady_row}
            print(flush=True)

    if "bare" in results:
        base = results["bare"]
        for config in configs:
            if config == "bare" or config not in results:
                continue
            ratios = [row["cpu_ms"] / max(bare["cpu_ms"], 1e-9)
                      for row, bare in zip(results[config]["bursts"], base["bursts"], strict=False)]
            steady_ratio = results[config]["steady"]["cpu_ms"] / max(base["steady"]["cpu_ms"], 1e-9)
            print(f"{config} ingester(s) / bare client, CPU per alert: bursts "
                  f"{', '.join(f'{r:.1f}x' for r in ratios)}; steady {steady_ratio:.1f}x   (aim: at most 3x)")


if __name__ == "__main__":
    main()
