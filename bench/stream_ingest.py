"""Benchmark: how fast the stream routes take real-size ZTF alerts from Pub/Sub into the TOM's database.

    .venv/bin/python bench/stream_ingest.py [--n 10000]        (or: make bench)

It starts the Pub/Sub emulator, publishes N real-size ZTF packets once (the real packets in
``../shared/data/ztf/alerts/``, replicated with unique candids; generated v4.02 packets if they are absent) to
one topic with one subscription per measurement, and measures, in the same run, each in a fresh process:

  (a) bare streaming pull, acknowledge-only callback     the delivery limit of the streaming route
  (b) tom_pittgoogle's StreamIngester into PostgreSQL    decode, filter, store in batches, then acknowledge
  (c) the original StreamPython design (bench/original_stream_python.py): one message at a time, a list
  (d) tom_pittgoogle's StreamRest route into PostgreSQL  ConsumerStreamRest.pull_alerts
  (e) bare REST pull-and-acknowledge loop                the delivery limit of the REST route

and prints the rates, the ratios b/a, b/c and d/e, and each process's peak memory (max RSS). Rates are
alerts per second from the subscribe/first pull to the N-th alert processed. No test asserts a time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_ZTF_ALERTS = Path(os.environ.get("PITTGOOGLE_SHARED_DIR", ROOT.parent / "shared")) / "data" / "ztf" / "alerts"
PITTGOOGLE_PROJECT = "ardent-cycling-243415"
USER_PROJECT = "pittgoogle-bench"
PHASES = {
    "a": "bare streaming pull, ack only",
    "b": "StreamIngester -> PostgreSQL",
    "c": "original StreamPython design",
    "d": "StreamRest route -> PostgreSQL",
    "e": "bare REST pull + ack",
}


# --- packets ------------------------------------------------------------------------------------------------


def real_size_packets(n: int) -> tuple[list[bytes], str]:
    """``n`` packets: the real ZTF packets re-serialized with their own writer schema and unique candids."""
    import fastavro

    paths = sorted(SHARED_ZTF_ALERTS.glob("*.avro"))
    if not paths:
        from tom_pittgoogle.demo.sample_alerts import make_packets

        return make_packets(n, seed=1), "generated ZTF v4.02-shaped packets (../shared absent)"
    templates = []
    for path in paths:
        with path.open("rb") as packet:
            reader = fastavro.reader(packet)
            templates.append((fastavro.parse_schema(reader.writer_schema), next(reader)))
    packets = []
    for i in range(n):
        schema, record = templates[i % len(templates)]
        candid = 3_000_000_000_000_000 + i  # a valid Avro long, below every real candid: unique
        copy = dict(record, candid=candid, candidate=dict(record["candidate"], candid=candid))
        out = io.BytesIO()
        fastavro.writer(out, schema, [copy])
        packets.append(out.getvalue())
    return packets, f"{len(paths)} real ZTF packets from {SHARED_ZTF_ALERTS}, replicated with unique candids"


# --- the measurements, each in its own process --------------------------------------------------------------


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def _empty_alert_table() -> None:
    from tom_pittgoogle.models import Alert, RejectedMessage

    Alert.objects.all().delete()
    RejectedMessage.objects.all().delete()


def _stored_count() -> int:
    from tom_pittgoogle.models import Alert

    return Alert.objects.count()


def phase_a(subscription: str, n: int) -> dict:
    import threading

    from tom_pittgoogle.pubsub import subscriber_client

    client = subscriber_client()
    lock, done = threading.Lock(), threading.Event()
    count = [0]

    def callback(message) -> None:
        message.ack()
        with lock:
            count[0] += 1
            if count[0] >= n:
                done.set()

    start = time.perf_counter()
    future = client.subscribe(f"projects/{USER_PROJECT}/subscriptions/{subscription}", callback)
    done.wait(timeout=600)
    elapsed = time.perf_counter() - start
    future.cancel()
    future.result(timeout=60)
    client.close()
    return {"alerts": count[0], "seconds": elapsed}


def phase_b(subscription: str, n: int) -> dict:
    _setup_django()
    _empty_alert_table()
    from tom_pittgoogle.ingest import Stream, StreamIngester

    finished = {}
    start = time.perf_counter()

    def on_stored(_stream, alerts) -> None:
        if ingester.stats.accepted + len(alerts) >= n and "at" not in finished:
            finished["at"] = time.perf_counter()

    ingester = StreamIngester([Stream(subscription)], on_stored=on_stored)
    stats = ingester.run(max_results=n, timeout=60)
    return {"alerts": stats.accepted, "stored": _stored_count(), "seconds": finished.get("at", time.perf_counter())
            - start}


def phase_c(subscription: str, n: int) -> dict:
    from bench.original_stream_python import OriginalConsumerStreamPython
    from tom_pittgoogle.pubsub import subscriber_client

    client = subscriber_client()
    consumer = OriginalConsumerStreamPython(client, f"projects/{USER_PROJECT}/subscriptions/{subscription}")
    start = time.perf_counter()
    alerts = consumer.stream_alerts(max_results=n, timeout=60)
    elapsed = time.perf_counter() - start
    client.close()
    return {"alerts": len(alerts), "seconds": elapsed}


def phase_d(subscription: str, n: int) -> dict:
    _setup_django()
    _empty_alert_table()
    from tom_pittgoogle.consumer_stream_rest import ConsumerStreamRest

    consumer = ConsumerStreamRest(subscription)
    start = time.perf_counter()
    alerts = consumer.pull_alerts(n, max_wait=30)
    elapsed = time.perf_counter() - start
    return {"alerts": len(alerts), "stored": _stored_count(), "seconds": elapsed}


def phase_e(subscription: str, n: int) -> dict:
    import requests

    url = f"http://{os.environ['PUBSUB_EMULATOR_HOST']}/v1/projects/{USER_PROJECT}/subscriptions/{subscription}"
    session = requests.Session()
    count, start = 0, time.perf_counter()
    while count < n:
        response = session.post(f"{url}:pull", json={"maxMessages": min(100, n - count), "returnImmediately": True})
        response.raise_for_status()
        received = response.json().get("receivedMessages", [])
        if received:
            session.post(f"{url}:acknowledge", json={"ackIds": [m["ackId"] for m in received]}).raise_for_status()
            count += len(received)
    return {"alerts": count, "seconds": time.perf_counter() - start}


def peak_rss_mib() -> float:
    """This process's peak resident memory. (``ru_maxrss`` would include what the parent held before exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(name: str, subscription: str, n: int) -> None:
    """Child process: one measurement; prints one JSON line."""
    sys.path.insert(0, str(ROOT))
    result = globals()[f"phase_{name}"](subscription, n)
    result["max_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


# --- the orchestrator ---------------------------------------------------------------------------------------


def _ensure_database(name: str) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="packets to publish (default 10000)")
    parser.add_argument("--only", default="abcde", help="which measurements to run (default abcde)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--subscription", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args.phase, args.subscription, args.n)
        return

    sys.path.insert(0, str(ROOT))
    from tom_pittgoogle.demo.emulators import PubSubEmulator

    database = os.environ.setdefault("PITTGOOGLE_BENCH_DB", "pittgoogle_bench")
    _ensure_database(database)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.settings", GOOGLE_CLOUD_PROJECT=USER_PROJECT,
               PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)

    packets, origin = real_size_packets(args.n)
    size = sum(map(len, packets)) / len(packets) / 1024
    print(f"{args.n} packets, {size:.1f} KB each on average: {origin}")
    with PubSubEmulator() as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = env["PUBSUB_EMULATOR_HOST"] = emulator.host
        from tom_pittgoogle.pubsub import publisher_client, subscriber_client

        topic = f"projects/{PITTGOOGLE_PROJECT}/topics/ztf-bench-{uuid.uuid4().hex[:8]}"
        publisher, subscriber = publisher_client(), subscriber_client()
        publisher.create_topic(name=topic)
        subscriptions = {}
        for phase in args.only:
            subscriptions[phase] = f"bench-{phase}-{uuid.uuid4().hex[:8]}"
            subscriber.create_subscription(
                name=f"projects/{USER_PROJECT}/subscriptions/{subscriptions[phase]}", topic=topic,
                ack_deadline_seconds=60,
            )
        subscriber.close()
        start = time.perf_counter()
        futures = [publisher.publish(topic, packet) for packet in packets]
        for future in futures:
            future.result(timeout=300)
        print(f"published in {time.perf_counter() - start:.1f} s\n")
        del packets, futures

        results = {}
        for phase in args.only:
            child = subprocess.run(
                [sys.executable, __file__, "--phase", phase, "--subscription", subscriptions[phase], "--n",
                 str(args.n)],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
            )
            if child.returncode != 0:
                print(f"({phase}) failed:\n{child.stderr[-3000:]}")
                continue
            results[phase] = result = json.loads(child.stdout.strip().splitlines()[-1])
            result["rate"] = result["alerts"] / result["seconds"]
            stored = f", {result['stored']} rows" if "stored" in result else ""
            print(f"({phase}) {PHASES[phase]:<36} {result['rate']:8.0f} alerts/s  "
                  f"({result['alerts']} in {result['seconds']:.1f} s{stored}), "
                  f"peak RSS {result['max_rss_mib']:.0f} MiB")

    print()
    for numerator, denominator, aim in (("b", "a", 0.75), ("b", "c", None), ("d", "e", 0.8)):
        if numerator in results and denominator in results:
            ratio = results[numerator]["rate"] / results[denominator]["rate"]
            goal = f"  (aim >= {aim})" if aim else ""
            print(f"{numerator}/{denominator} = {ratio:.2f}{goal}")


if __name__ == "__main__":
    main()
