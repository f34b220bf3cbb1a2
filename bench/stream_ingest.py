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

(With ``PITTGOOGLE_BENCH_PYSPY=/path/to/py-spy`` each phase runs under py-spy and leaves ``$TMPDIR/pyspy-<phase>.txt``:
collapsed stacks of all its threads, for a profile; its figures are then not comparable.)

It prints for each: the wall rate, the consumer's CPU milliseconds per alert (all its threads:
``time.process_time()`` over the same window), the emulator's CPU per alert, the 1-minute load average
during the phase, and the peak memory (max RSS); then the ratios b/a, b/c and d/e of both rates and CPU. Rates
are alerts per second from the subscribe/first pull to the N-th alert processed. On a shared machine the wall
rate moves with every other process; the CPU per alert does not, so the aims are read on it.

The emulator runs with its full JIT (no ``-XX:TieredStopAtLevel=1``, which halves its start but doubles its
cost per message) and is warmed up first: a streaming pull and a REST loop over the same packets on
subscriptions of their own, so that what the phases measure is this app, not the emulator's JIT. No test
asserts a time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
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


def _window(start_wall: float, start_cpu: float, alerts: int, **extra) -> dict:
    """What a phase measured, from its start to now: wall seconds and this process's CPU (all threads)."""
    return {"alerts": alerts, "seconds": time.perf_counter() - start_wall,
            "cpu_seconds": time.process_time() - start_cpu, **extra}


def phase_a(subscription: str, n: int) -> dict:
    import threading

    from tom_pittgoogle.core.pubsub import subscriber_client

    client = subscriber_client()
    lock, done = threading.Lock(), threading.Event()
    count = [0]

    def callback(message) -> None:
        message.ack()
        with lock:
            count[0] += 1
            if count[0] >= n:
                done.set()

    start, start_cpu = time.perf_counter(), time.process_time()
    future = client.subscribe(f"projects/{USER_PROJECT}/subscriptions/{subscription}", callback)
    done.wait(timeout=600)
    result = _window(start, start_cpu, count[0])
    future.cancel()
    future.result(timeout=60)
    client.close()
    return result


def phase_b(subscription: str, n: int) -> dict:
    _setup_django()
    _empty_alert_table()
    from tom_pittgoogle.core.engine import Stream, StreamIngester

    finished = {}
    start, start_cpu = time.perf_counter(), time.process_time()

    def on_stored(_stream, alerts) -> None:
        if ingester.stats.accepted >= n and "result" not in finished:  # on_stored runs after the counts
            finished["result"] = _window(start, start_cpu, ingester.stats.accepted)

    ingester = StreamIngester([Stream(subscription)], on_stored=on_stored)
    stats = ingester.run(max_results=n, timeout=60)
    result = finished.get("result") or _window(start, start_cpu, stats.accepted)
    return {**result, "alerts": stats.accepted, "stored": _stored_count()}


def phase_c(subscription: str, n: int) -> dict:
    from bench.original_stream_python import OriginalConsumerStreamPython
    from tom_pittgoogle.core.pubsub import subscriber_client

    client = subscriber_client()
    consumer = OriginalConsumerStreamPython(client, f"projects/{USER_PROJECT}/subscriptions/{subscription}")
    start, start_cpu = time.perf_counter(), time.process_time()
    alerts = consumer.stream_alerts(max_results=n, timeout=60)
    result = _window(start, start_cpu, len(alerts))
    client.close()
    return result


def phase_d(subscription: str, n: int) -> dict:
    _setup_django()
    _empty_alert_table()
    from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

    consumer = ConsumerStreamRest(subscription)
    start, start_cpu = time.perf_counter(), time.process_time()
    alerts = consumer.pull_alerts(n, max_wait=30)
    result = _window(start, start_cpu, len(alerts))
    return {**result, "stored": _stored_count()}


def phase_e(subscription: str, n: int) -> dict:
    import requests

    url = f"http://{os.environ['PUBSUB_EMULATOR_HOST']}/v1/projects/{USER_PROJECT}/subscriptions/{subscription}"
    session = requests.Session()
    count, start, start_cpu = 0, time.perf_counter(), time.process_time()
    while count < n:
        response = session.post(f"{url}:pull", json={"maxMessages": min(100, n - count), "returnImmediately": True})
        response.raise_for_status()
        received = response.json().get("receivedMessages", [])
        if received:
            session.post(f"{url}:acknowledge", json={"ackIds": [m["ackId"] for m in received]}).raise_for_status()
            count += len(received)
    return _window(start, start_cpu, count)


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


def bench_environment() -> dict:
    """The phases' environment, on the bench's own PostgreSQL database (created and migrated if needed)."""
    database = os.environ.setdefault("PITTGOOGLE_BENCH_DB", "pittgoogle_bench")
    _ensure_database(database)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.settings", GOOGLE_CLOUD_PROJECT=USER_PROJECT,
               PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    return env


def full_jit_emulator():
    """The Pub/Sub emulator with the JVM's full JIT (C2): slower to start, half the cost per message."""
    from tom_pittgoogle.demo.emulators import PubSubEmulator

    class FullJitPubSubEmulator(PubSubEmulator):
        def _command(self) -> list[str]:
            return [arg for arg in super()._command() if not arg.startswith("-XX:TieredStopAtLevel")]

    return FullJitPubSubEmulator()


def _process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _emulator_pid(emulator) -> int:
    """The JVM's pid (the launcher execs java, so it is the process the emulator object started)."""
    return emulator.process.pid


class _LoadSampler:
    """The 1-minute load average, sampled every second in the orchestrator while a phase runs."""

    def __init__(self) -> None:
        import threading

        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(1.0):
                return

    def __enter__(self) -> _LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float:
        return sum(self.samples) / max(1, len(self.samples))


def _run_child(phase: str, subscription: str, n: int, env: dict, script: str = __file__) -> tuple[dict | None, str]:
    """Run ``script --phase PHASE`` (this one, or another bench script) in a fresh process; its JSON line."""
    command = [sys.executable, script, "--phase", phase, "--subscription", subscription, "--n", str(n)]
    profiler = os.environ.get("PITTGOOGLE_BENCH_PYSPY")  # a py-spy executable: sample this phase's threads
    if profiler and not subscription.startswith("warm"):
        command = [profiler, "record", "--format", "raw", "--threads", "--gil", "--nonblocking", "--rate", "250",
                   "--output", str(Path(tempfile.gettempdir()) / f"pyspy-{phase}.txt"), "--", *command]
    child = subprocess.run(
        command,
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    if child.returncode != 0:
        return None, child.stderr[-3000:]
    return json.loads([line for line in child.stdout.splitlines() if line.startswith("{")][-1]), ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="packets to publish (default 10000)")
    parser.add_argument("--only", default="abcde", help="which measurements to run (default abcde)")
    parser.add_argument("--warmup", type=int, default=3000,
                        help="packets the emulator serves (gRPC and REST) before measuring (default 3000)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--subscription", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args.phase, args.subscription, args.n)
        return

    sys.path.insert(0, str(ROOT))

    env = bench_environment()

    packets, origin = real_size_packets(args.n)
    size = sum(map(len, packets)) / len(packets) / 1024
    print(f"{args.n} packets, {size:.1f} KB each on average: {origin}")
    warmup = min(args.warmup, args.n)
    with full_jit_emulator() as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = env["PUBSUB_EMULATOR_HOST"] = emulator.host
        from tom_pittgoogle.core.pubsub import publisher_client, subscriber_client

        topic = f"projects/{PITTGOOGLE_PROJECT}/topics/ztf-bench-{uuid.uuid4().hex[:8]}"
        publisher, subscriber = publisher_client(), subscriber_client()
        publisher.create_topic(name=topic)
        subscriptions = {}
        warm = {"a": f"warm-grpc-{uuid.uuid4().hex[:8]}", "e": f"warm-rest-{uuid.uuid4().hex[:8]}"}
        for key, name in [*((phase, f"bench-{phase}-{uuid.uuid4().hex[:8]}") for phase in args.only),
                          *((f"warm-{phase}", name) for phase, name in warm.items())]:
            subscriptions[key] = name
            subscriber.create_subscription(
                name=f"projects/{USER_PROJECT}/subscriptions/{name}", topic=topic, ack_deadline_seconds=60,
            )
        subscriber.close()
        start = time.perf_counter()
        futures = [publisher.publish(topic, packet) for packet in packets]
        for future in futures:
            future.result(timeout=300)
        print(f"published in {time.perf_counter() - start:.1f} s (emulator with its full JIT)")
        del packets, futures

        if warmup:
            start = time.perf_counter()
            for phase, name in warm.items():  # the emulator's streaming-pull and REST paths, compiled
                _result, error = _run_child(phase, name, warmup, env)
                if error:
                    print(f"warm-up ({phase}) failed:\n{error}")
            print(f"emulator warmed up: {warmup} packets over gRPC and over REST in "
                  f"{time.perf_counter() - start:.1f} s")
        print()

        results = {}
        jvm = _emulator_pid(emulator)
        for phase in args.only:
            emulator_cpu = _process_cpu_seconds(jvm)
            with _LoadSampler() as load:
                result, error = _run_child(phase, subscriptions[phase], args.n, env)
            if result is None:
                print(f"({phase}) failed:\n{error}")
                continue
            results[phase] = result
            result["emulator_cpu_seconds"] = _process_cpu_seconds(jvm) - emulator_cpu
            result["rate"] = result["alerts"] / result["seconds"]
            result["cpu_ms"] = 1000 * result["cpu_seconds"] / max(1, result["alerts"])
            result["load"] = load.mean
            stored = f", {result['stored']} rows" if "stored" in result else ""
            print(f"({phase}) {PHASES[phase]:<32} {result['rate']:6.0f} alerts/s  "
                  f"CPU {result['cpu_ms']:.3f} ms/alert  "
                  f"(emulator {1000 * result['emulator_cpu_seconds'] / max(1, result['alerts']):.2f})  "
                  f"load {load.mean:.1f}  peak RSS {result['max_rss_mib']:.0f} MiB  "
                  f"({result['alerts']} in {result['seconds']:.1f} s{stored})")

    print()
    for numerator, denominator, aim in (("b", "a", "rate >= 0.85, CPU <= 3x"), ("b", "c", None),
                                        ("d", "e", "rate >= 0.85, CPU <= e + 0.35 ms")):
        if numerator in results and denominator in results:
            top, bottom = results[numerator], results[denominator]
            goal = f"   (aim: {aim})" if aim else ""
            print(f"{numerator}/{denominator}: rate {top['rate'] / bottom['rate']:.2f}, "
                  f"CPU {top['cpu_ms'] / bottom['cpu_ms']:.2f}x (+{top['cpu_ms'] - bottom['cpu_ms']:.3f} ms)"
                  f"{goal}")


if __name__ == "__main__":
    main()
