"""Benchmark: what a message costs the TOM when a subscription filter drops it, next to an alert it stores.

    .venv/bin/python bench/server_filter.py [--n 3000]        (also run by make bench)

On Google, a subscription's filter drops a message before delivery: the TOM never receives it. The Pub/Sub
emulator delivers it anyway, and the ingester drops it on its attributes before decoding (the same filter,
evaluated in the TOM). This measures, in one run, on real-size ZTF packets (as bench/stream_ingest.py builds
them) published with ztf-tagged's ``is_pure`` attribute, each phase in a fresh process on a subscription of its
own with the filter ``attributes.is_pure = "1"``:

  (a) bare streaming pull, acknowledge-only callback, every message       the delivery limit
  (s) StreamIngester, every message passes the filter: decoded, stored    CPU per stored alert
  (x) StreamIngester, no message passes the filter: dropped on attributes CPU per delivered-and-dropped message

and prints each one's consumer CPU per message (all its threads), the emulator's, and the ratios x/s and x/a:
what a dropped message still costs when it is delivered (the emulator, or a subscription without the filter
and the same filter in the TOM), against what it costs on Google with the filter (nothing: it never arrives).
No test asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stream_ingest import (  # noqa: E402  (the repository root is put on the path first)
    PITTGOOGLE_PROJECT,
    USER_PROJECT,
    _emulator_pid,
    _process_cpu_seconds,
    _run_child,
    _setup_django,
    _window,
    bench_environment,
    full_jit_emulator,
    peak_rss_mib,
    phase_a,
    real_size_packets,
)

FILTER = 'attributes.is_pure = "1"'
PHASES = {
    "a": "bare streaming pull, ack only",
    "s": "StreamIngester, all pass: stored",
    "x": "StreamIngester, none pass: dropped",
}


def _ingest(subscription: str, n: int, *, dropped: bool) -> dict:
    """The ingester on ``subscription`` (created with FILTER) until ``n`` messages are stored or dropped."""
    _setup_django()
    from tom_pittgoogle.core.engine import Stream, StreamIngester
    from tom_pittgoogle.models import Alert

    Alert.objects.all().delete()
    ingester = StreamIngester([Stream(subscription, server_filter=_filter())])
    start, start_cpu = time.perf_counter(), time.process_time()
    done = {}

    def watch() -> None:
        while not ingester.stopping:
            counted = ingester.stats.filtered_out_server if dropped else ingester.stats.accepted
            if counted >= n:
                done["result"] = _window(start, start_cpu, counted)
                ingester.stop()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stats = ingester.run(timeout=60)
    result = done.get("result") or _window(start, start_cpu, stats.filtered_out_server if dropped else stats.accepted)
    return {**result, "stored": Alert.objects.count(), "filtered_out_server": stats.filtered_out_server}


def _filter():
    from tom_pittgoogle.core.attribute_filter import AttributeFilter

    return AttributeFilter.parse(FILTER)


def phase_s(subscription: str, n: int) -> dict:
    return _ingest(subscription, n, dropped=False)


def phase_x(subscription: str, n: int) -> dict:
    return _ingest(subscription, n, dropped=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="packets per topic (default 3000)")
    parser.add_argument("--warmup", type=int, default=2000, help="packets served before measuring (default 2000)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--subscription", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = {"a": phase_a, "s": phase_s, "x": phase_x}[args.phase](args.subscription, args.n)
        print(json.dumps({**result, "max_rss_mib": peak_rss_mib()}))
        return

    env = bench_environment()
    packets, origin = real_size_packets(args.n)
    size_kb = sum(map(len, packets)) / len(packets) / 1024
    print(f"{args.n} packets per topic, {size_kb:.1f} KB each on average: {origin}; subscription filter {FILTER}")

    with full_jit_emulator() as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = env["PUBSUB_EMULATOR_HOST"] = emulator.host
        from tom_pittgoogle.core.pubsub import publisher_client
        from tom_pittgoogle.core.subscription import Subscription

        publisher = publisher_client()
        names = {}
        # Topic "1": every message pure (passes); topic "0": none (dropped). Each phase a subscription of its own.
        for pure, phases in (("1", ("warm-s", "s")), ("0", ("warm-x", "a", "x"))):
            topic = f"ztf-bench-pure{pure}-{uuid.uuid4().hex[:8]}"
            publisher.create_topic(name=f"projects/{PITTGOOGLE_PROJECT}/topics/{topic}")
            for phase in phases:
                names[phase] = f"bench-{phase}-{uuid.uuid4().hex[:8]}"
                subscription = Subscription(names[phase], project=USER_PROJECT, topic=topic,
                                            filter=None if phase == "a" else FILTER)
                subscription.touch()
                subscription.close()
            futures = [publisher.publish(f"projects/{PITTGOOGLE_PROJECT}/topics/{topic}", packet, is_pure=pure,
                                         candid=str(i)) for i, packet in enumerate(packets)]
            for future in futures:
                future.result(timeout=300)
        del packets, futures
        warmup = min(args.warmup, args.n)
        if warmup:
            for phase in ("s", "x"):  # the emulator's JIT and PostgreSQL's caches, before measuring
                _result, error = _run_child(phase, names[f"warm-{phase}"], warmup, env, __file__)
                if error:
                    print(f"warm-up ({phase}) failed:\n{error}")
        print()
        jvm = _emulator_pid(emulator)
        results = {}
        for phase in ("a", "s", "x"):
            emulator_cpu = _process_cpu_seconds(jvm)
            result, error = _run_child(phase, names[phase], args.n, env, __file__)
            if result is None:
                print(f"({phase}) failed:\n{error}")
                continue
            count = max(1, result["alerts"])
            result["cpu_ms"] = 1000 * result["cpu_seconds"] / count
            result["emulator_ms"] = 1000 * (_process_cpu_seconds(jvm) - emulator_cpu) / count
            results[phase] = result
            extra = f", {result['stored']} rows stored" if "stored" in result else ""
            print(f"({phase}) {PHASES[phase]:<36} {result['alerts'] / result['seconds']:6.0f} msg/s  "
                  f"CPU {result['cpu_ms']:.3f} ms/message  (emulator {result['emulator_ms']:.2f})  "
                  f"peak RSS {result['max_rss_mib']:.0f} MiB  ({result['alerts']} in {result['seconds']:.1f} s"
                  f"{extra})")
    print()
    if "s" in results and "x" in results:
        s, x = results["s"], results["x"]
        print(f"x/s: a delivered-and-dropped message costs the TOM {x['cpu_ms']:.3f} ms of CPU, "
              f"{x['cpu_ms'] / s['cpu_ms']:.2f}x a stored alert's {s['cpu_ms']:.3f} ms; with the filter on "
              f"Google it costs the TOM nothing (never delivered: {size_kb:.0f} KB of egress saved as well)")
    if "a" in results and "x" in results:
        a, x = results["a"], results["x"]
        print(f"x/a: {x['cpu_ms'] / a['cpu_ms']:.2f}x the bare client's delivery cost ({a['cpu_ms']:.3f} ms): "
              "what a dropped message costs is mostly its delivery")


if __name__ == "__main__":
    main()
