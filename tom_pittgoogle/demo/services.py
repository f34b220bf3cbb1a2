"""Pitt-Google's services on the local emulators: started, loaded with sample alerts, and kept publishing.

One start-up for the demo (``python -m tom_pittgoogle.demo``) and for pointing a TOM of your own at the
emulators (``manage.py pittgoogle_emulators`` or ``python -m tom_pittgoogle.demo emulators``):

- :func:`running_emulators`: the Pub/Sub and BigQuery emulators, with ``PUBSUB_EMULATOR_HOST`` and
  ``BIGQUERY_EMULATOR_HOST`` pointing at them, both stopped on every way out;
- :func:`load_samples`: Pitt-Google's topics (ZTF's in ``ardent-cycling-243415``, Rubin/LSST's in
  ``pitt-alert-broker``), the subscriptions of the TOM's project, the alert tables, and sample alerts in each;
- :class:`Publisher`: a new sample alert a second on ``ztf-loop`` and one every few seconds on ``lsst-alerts``,
  as the real streams keep coming.

Django must be configured before :func:`load_samples`: the subscriptions are made in the TOM's project
(``GOOGLE_CLOUD_PROJECT``), the project a TOM subscribes in.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PITTGOOGLE_PROJECT = "ardent-cycling-243415"
TOPIC = "ztf-loop"
TABLE = f"{PITTGOOGLE_PROJECT}.ztf.alerts_v4_02"
LSST_PROJECT = "pitt-alert-broker"
LSST_TOPIC = "lsst-alerts"
LSST_TABLE = f"{LSST_PROJECT}.lsst.alerts_v10_0"
#: Seconds between two published Rubin/LSST alerts (ZTF's come one a second).
LSST_EVERY = 5

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def running_emulators(log_dir: str | os.PathLike[str] | None = None) -> Iterator[tuple]:
    """Start the Pub/Sub and BigQuery emulators and point Google's variables at them; stop both on the way out.

    Yields ``(pubsub, bigquery)``. Each is stopped however the block ends (an error, Ctrl-C, SIGTERM turned
    into KeyboardInterrupt), also when the interrupt comes while it starts; a second Ctrl-C during the stop
    is ignored, so that no JVM is left behind.
    """
    from tom_pittgoogle.demo.emulators import BigQueryEmulator, PubSubEmulator

    with contextlib.ExitStack() as emulators:
        pubsub, bigquery = PubSubEmulator(log_dir=log_dir), BigQueryEmulator(log_dir=log_dir)
        for emulator in (pubsub, bigquery):
            emulators.callback(emulator.stop)  # before start(): a Ctrl-C just after it must stop it too
            emulator.start()
        # Runs first on the way out: a second Ctrl-C must not cut the emulators' stop short.
        emulators.callback(ignore_interrupts)
        os.environ["PUBSUB_EMULATOR_HOST"] = pubsub.host
        os.environ["BIGQUERY_EMULATOR_HOST"] = bigquery.host
        yield pubsub, bigquery


def ignore_interrupts() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def interrupt(signum, frame) -> None:
    """A signal handler that ends the program as Ctrl-C does (so ``finally`` blocks stop the emulators)."""
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP end the program like Ctrl-C, so the emulators (in process groups of their own) stop; and
    Ctrl-C does, even when the program was started with it ignored (in the background of a script)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


@dataclass
class Samples:
    """What :func:`load_samples` published and loaded: the ZTF and the Rubin/LSST alert records."""

    ztf: list[dict]
    lsst: list[dict]


def load_samples(bigquery_endpoint: str, alerts: int = 40, *, seed: int = 2025, lsst_seed: int = 11,
                 ztf_subscriptions: tuple[str, ...] = ()) -> Samples:
    """Pitt-Google's topics and tables on the emulators, with sample alerts in both.

    The subscriptions ``ztf-loop`` and ``lsst-alerts`` (the forms' defaults) and ``ztf_subscriptions`` exist in
    the TOM's project before anything is published, as on Google Cloud, so each gets every sample alert.
    ``seed`` and ``lsst_seed`` (below 90) choose the alerts: another seed, other objects and ids.
    """
    import fastavro

    from tom_pittgoogle.core.alerts import decode_alert
    from tom_pittgoogle.core.pubsub import publisher_client
    from tom_pittgoogle.demo.bigquery_tables import bigquery_client, create_alerts_table, load_alerts
    from tom_pittgoogle.demo.sample_alerts import ZTF_ALERT_SCHEMA, make_packets
    from tom_pittgoogle.demo.sample_lsst import lsst_alert_schema, make_lsst_packets
    from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

    packets = make_packets(alerts, seed=seed, null_classtar_every=7)
    records = [next(iter(fastavro.reader(io.BytesIO(packet)))) for packet in packets]
    client = bigquery_client(bigquery_endpoint, PITTGOOGLE_PROJECT)
    load_alerts(client, create_alerts_table(client, TABLE, ZTF_ALERT_SCHEMA), records)
    print(f"Loaded {len(records)} sample ZTF alerts into BigQuery table {TABLE}")

    publisher = publisher_client()
    topic = f"projects/{PITTGOOGLE_PROJECT}/topics/{TOPIC}"
    publisher.create_topic(name=topic)
    ConsumerStreamRest(TOPIC)
    subscribe(TOPIC, *ztf_subscriptions)
    for future in [publisher.publish(topic, packet) for packet in packets]:
        future.result(timeout=30)
    print(f"Published {len(packets)} sample ZTF alerts to Pub/Sub topic {topic}")

    lsst_packets = [packet for _, packet in make_lsst_packets(seed=lsst_seed)]
    lsst_records = [decode_alert(packet) for packet in lsst_packets]
    client = bigquery_client(bigquery_endpoint, LSST_PROJECT)
    load_alerts(client, create_alerts_table(client, LSST_TABLE, lsst_alert_schema(10, 0)), lsst_records)
    lsst_topic = f"projects/{LSST_PROJECT}/topics/{LSST_TOPIC}"
    publisher.create_topic(name=lsst_topic)
    ConsumerStreamRest(LSST_TOPIC, survey="lsst")
    for future in [publisher.publish(lsst_topic, packet) for packet in lsst_packets]:
        future.result(timeout=30)
    print(f"Published {len(lsst_packets)} Rubin/LSST sample alerts to {lsst_topic} and loaded them into "
          f"{LSST_TABLE}")
    return Samples(records, lsst_records)


def subscribe(topic: str, *names: str) -> None:
    """Subscriptions with names of their own on ZTF's ``topic`` in the TOM's project (a form attaches a new
    subscription to the topic of its own name, so these are made here)."""
    from google.api_core.exceptions import AlreadyExists

    from tom_pittgoogle.core.pubsub import close_client, subscriber_client, subscription_path

    subscriber = subscriber_client()
    try:
        for name in names:
            try:
                subscriber.create_subscription(name=subscription_path(name),
                                               topic=f"projects/{PITTGOOGLE_PROJECT}/topics/{topic}")
            except AlreadyExists:
                pass
    finally:
        close_client(subscriber)


class Publisher:
    """Publishes new sample alerts until stopped: ZTF one a second on ``ztf-loop`` (as Pitt-Google's heartbeat
    stream does), Rubin/LSST one every :data:`LSST_EVERY` seconds on ``lsst-alerts``; a daemon thread."""

    def __init__(self, seed: int = 10_000) -> None:
        self.seed = seed
        self.published = {"ztf": 0, "lsst": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pittgoogle-sample-publisher", daemon=True)

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._publish_until_stopped()
        except Exception:  # noqa: BLE001 - an emulator stopped under it: the program is ending
            if not self._stop.is_set():
                logger.exception("publishing sample alerts stopped")

    def _publish_until_stopped(self) -> None:
        from tom_pittgoogle.core.pubsub import publisher_client
        from tom_pittgoogle.demo.sample_alerts import make_packets
        from tom_pittgoogle.demo.sample_lsst import lsst_schema_versions, make_lsst_alert, serialize_wire_format

        publisher = publisher_client()
        ztf_topic = f"projects/{PITTGOOGLE_PROJECT}/topics/{TOPIC}"
        lsst_topic = f"projects/{LSST_PROJECT}/topics/{LSST_TOPIC}"
        major, minor = lsst_schema_versions()[-1]
        seed, tick, lsst_index = self.seed, 0, 10  # the loaded LSST samples use indexes 0 and 1 (any seed)
        while not self._stop.is_set():
            seed += 1
            for packet in make_packets(10, seed=seed):
                if self._stop.wait(1.0):
                    return
                publisher.publish(ztf_topic, packet)
                self.published["ztf"] += 1
                tick += 1
                if tick % LSST_EVERY == 0:
                    record = make_lsst_alert(major, minor, index=lsst_index % 1000, seed=11)
                    publisher.publish(lsst_topic, serialize_wire_format(record, major, minor))
                    self.published["lsst"] += 1
                    lsst_index += 1


def export_lines(pubsub, bigquery) -> list[str]:
    """The shell lines that point a TOM (its commands and its web server) at these emulators."""
    return [f"export PUBSUB_EMULATOR_HOST={pubsub.host}", f"export BIGQUERY_EMULATOR_HOST={bigquery.host}"]


def serve_emulators(alerts: int = 40, log_dir: str | os.PathLike[str] | None = None, *, out=None) -> int:
    """Start the emulators with Pitt-Google's topics, tables and sample alerts, print the lines to export, keep
    publishing until Ctrl-C or SIGTERM, then stop both emulators. Django must be configured (see above)."""
    import sys

    from tom_pittgoogle.demo.emulators import EmulatorError

    out = out or sys.stdout
    stop_on_signals()
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    try:
        with running_emulators(log_dir) as (pubsub, bigquery):
            samples = load_samples(bigquery.endpoint, alerts)
            publisher = Publisher().start()
            try:
                print("\nPitt-Google's services run on the emulators: ZTF's topic ztf-loop in "
                      f"{PITTGOOGLE_PROJECT}, Rubin/LSST's lsst-alerts in {LSST_PROJECT}, their BigQuery tables "
                      f"{TABLE} and {LSST_TABLE} ({len(samples.ztf)} and {len(samples.lsst)} sample alerts), and "
                      "a new alert a second. Point your TOM at them: run these lines in the shell of its web "
                      "server and its commands (then start them from that shell):\n", file=out)
                for line in export_lines(pubsub, bigquery):
                    print(f"    {line}", file=out)
                print("\nCtrl-C (or SIGTERM) stops both emulators.", file=out, flush=True)
                while True:  # until Ctrl-C or SIGTERM (KeyboardInterrupt)
                    time.sleep(1)
            finally:
                publisher.stop()
    except KeyboardInterrupt:
        pass
    except EmulatorError as error:
        print(f"Could not start an emulator: {error}", file=sys.stderr)
        return 1
    print("Stopped both emulators.", file=out, flush=True)
    return 0
