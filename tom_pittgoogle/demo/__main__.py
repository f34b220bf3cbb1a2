"""The embedded default: Pitt-Google's services on local emulators, fed with sample alerts, and a demo TOM.

    python -m tom_pittgoogle.demo [--no-serve] [--port 8000] [--dir demo-tom] [--alerts 40]

Starts the Pub/Sub emulator and the BigQuery emulator, publishes sample ZTF alerts to ``ztf-loop`` and loads
them into ``ardent-cycling-243415.ztf.alerts_v4_02``, creates a demo TOM (SQLite), saves one query per route
through each broker's own form (each stream query with a subscription of its own), runs them with TOM Toolkit's
``runbrokerquery``, prints what each fetched and which Targets it made, then serves the TOM on 127.0.0.1 (user
``demo``, password ``demo``) while a heartbeat publishes one new alert a second to ``ztf-loop``, like the real
stream. The emulators stop on every exit (Ctrl-C, SIGTERM, an error); a taken port is refused before anything
starts. No Google account is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import signal
import sys
import threading
from collections import Counter
from pathlib import Path

import fastavro

PITTGOOGLE_PROJECT = "ardent-cycling-243415"
TOPIC = "ztf-loop"
TABLE = f"{PITTGOOGLE_PROJECT}.ztf.alerts_v4_02"
LSST_PROJECT = "pitt-alert-broker"
LSST_TOPIC = "lsst-alerts"
LSST_TABLE = f"{LSST_PROJECT}.lsst.alerts_v10_0"
DEMO_USER = "demo"
#: The subscriptions of the demo's stream queries, one per query, all attached to ztf-loop: two queries on one
#: subscription would share (and so split) its messages.
REST_SUBSCRIPTION = "ztf-loop-demo-rest"
PYTHON_SUBSCRIPTION = "ztf-loop-demo-python"

logger = logging.getLogger("tom_pittgoogle.demo")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tom_pittgoogle.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-serve", action="store_true", help="stop after the queries instead of serving")
    parser.add_argument("--port", type=int, default=8000, help="port of the TOM's web server (default 8000)")
    parser.add_argument("--dir", default="demo-tom", help="folder of the demo TOM's database and logs")
    parser.add_argument("--alerts", type=int, default=40, help="sample alerts to publish and load (default 40)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tom_pittgoogle.demo.emulators import BigQueryEmulator, EmulatorError, PubSubEmulator, port_is_free

    if not args.no_serve and not port_is_free(args.port):
        print(f"Port {args.port} is already in use on 127.0.0.1: stop what uses it, or choose another port with "
              f"--port (make demo DEMO_ARGS=\"--port {args.port + 1}\").", file=sys.stderr)
        return 2
    workdir = Path(args.dir).resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    os.environ["PITTGOOGLE_DEMO_DIR"] = str(workdir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tom_pittgoogle.demo.tom_settings"

    # SIGTERM and SIGHUP end the demo like Ctrl-C, so the emulators (in process groups of their own) stop too.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        with contextlib.ExitStack() as emulators:
            pubsub, bigquery = PubSubEmulator(log_dir=workdir / "logs"), BigQueryEmulator(log_dir=workdir / "logs")
            for emulator in (pubsub, bigquery):
                emulators.callback(emulator.stop)  # before start(): a Ctrl-C just after it must stop it too
                emulator.start()
            # Runs first on the way out: a second Ctrl-C must not cut the emulators' stop short.
            emulators.callback(_ignore_interrupts)
            os.environ["PUBSUB_EMULATOR_HOST"] = pubsub.host
            os.environ["BIGQUERY_EMULATOR_HOST"] = bigquery.host
            import django

            django.setup()
            run_demo(args, bigquery.endpoint)
            if not args.no_serve:
                serve(args.port)
    except EmulatorError as error:
        print(f"The demo could not start an emulator: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the port was taken meanwhile
        print(f"The demo TOM could not listen on 127.0.0.1:{args.port}: {error.strerror or error}; choose "
              "another port with --port.", file=sys.stderr)
        return 2
    return 0


def _main_interruptible() -> int:
    try:
        return main()
    except KeyboardInterrupt:
        return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _ignore_interrupts() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def run_demo(args: argparse.Namespace, bigquery_endpoint: str) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tom_pittgoogle.core.pubsub import publisher_client
    from tom_pittgoogle.demo.bigquery_tables import bigquery_client, create_alerts_table, load_alerts
    from tom_pittgoogle.demo.sample_alerts import ZTF_ALERT_SCHEMA, make_packets
    from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    if not user_model.objects.filter(username=DEMO_USER).exists():
        user_model.objects.create_superuser(DEMO_USER, "demo@example.org", DEMO_USER)

    packets = make_packets(args.alerts, seed=2025, null_classtar_every=7)
    records = [next(iter(fastavro.reader(io.BytesIO(packet)))) for packet in packets]

    client = bigquery_client(bigquery_endpoint, PITTGOOGLE_PROJECT)
    load_alerts(client, create_alerts_table(client, TABLE, ZTF_ALERT_SCHEMA), records)
    print(f"\nLoaded {len(records)} sample alerts into BigQuery table {TABLE}")

    publisher = publisher_client()
    topic = f"projects/{PITTGOOGLE_PROJECT}/topics/{TOPIC}"
    publisher.create_topic(name=topic)
    # The subscriptions must exist before publishing, as on Google Cloud: one per stream query, and ztf-loop's own
    # (the forms' default) for the queries a visitor makes.
    ConsumerStreamRest(TOPIC)
    subscribe_to_ztf_loop(REST_SUBSCRIPTION, PYTHON_SUBSCRIPTION)
    for future in [publisher.publish(topic, packet) for packet in packets]:
        future.result(timeout=30)
    print(f"Published {len(packets)} sample alerts to Pub/Sub topic {topic}\n")

    lsst_records = publish_lsst(bigquery_endpoint)

    for query in save_queries(records, lsst_records):
        run_saved_query(query)


def subscribe_to_ztf_loop(*names: str) -> None:
    """Subscriptions with names of their own on ztf-loop (the forms attach a new subscription to the topic of its
    own name, so these are made here)."""
    from google.api_core.exceptions import AlreadyExists

    from tom_pittgoogle.core.pubsub import close_client, subscriber_client, subscription_path

    subscriber = subscriber_client()
    try:
        for name in names:
            try:
                subscriber.create_subscription(name=subscription_path(name),
                                               topic=f"projects/{PITTGOOGLE_PROJECT}/topics/{TOPIC}")
            except AlreadyExists:
                pass
    finally:
        close_client(subscriber)


def history_object(records: list[dict]) -> str:
    """The object with the richest light curve among the sample alerts: most alerts, then most history."""
    alerts_per_object = Counter(record["objectId"] for record in records)
    richest = max(records, key=lambda r: (alerts_per_object[r["objectId"]], len(r.get("prv_candidates") or [])))
    return richest["objectId"]


def publish_lsst(bigquery_endpoint: str) -> list[dict]:
    """Rubin/LSST sample alerts (every schema version lsst-alert-packet ships) to lsst-alerts and the LSST table."""
    from tom_pittgoogle.core.alerts import decode_alert
    from tom_pittgoogle.core.pubsub import publisher_client
    from tom_pittgoogle.demo.bigquery_tables import bigquery_client, create_alerts_table, load_alerts
    from tom_pittgoogle.demo.sample_lsst import lsst_alert_schema, make_lsst_packets
    from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

    packets = [packet for _, packet in make_lsst_packets()]
    records = [decode_alert(packet) for packet in packets]
    client = bigquery_client(bigquery_endpoint, LSST_PROJECT)
    load_alerts(client, create_alerts_table(client, LSST_TABLE, lsst_alert_schema(10, 0)), records)
    publisher = publisher_client()
    topic = f"projects/{LSST_PROJECT}/topics/{LSST_TOPIC}"
    publisher.create_topic(name=topic)
    ConsumerStreamRest(LSST_TOPIC, survey="lsst")
    for future in [publisher.publish(topic, packet) for packet in packets]:
        future.result(timeout=30)
    print(f"Published {len(packets)} Rubin/LSST sample alerts to {topic} and loaded them into {LSST_TABLE}\n")
    return records


def save_queries(records: list[dict], lsst_records: list[dict]):
    """One saved query per route, made and validated by the broker's own form as the Alerts page does."""
    from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
    from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
    from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest

    stream_filter = {"classtar_threshold": "", "classtar_gt_lt": "lt"}
    history = history_object(records)
    # The history first: its Target then gets the newest alert's light curve (which holds the earlier points).
    queries = [
        (
            BrokerDatabasePython,
            f"DatabasePython: history of {history}",
            {"objectId": history, "candid": "", "max_results": 10},
        ),
        (
            BrokerStreamRest,
            f"StreamRest: 5 alerts from ztf-loop (subscription {REST_SUBSCRIPTION})",
            {**stream_filter, "subscription_name": REST_SUBSCRIPTION, "max_results": 5, "timeout": 5},
        ),
        (
            BrokerStreamPython,
            f"StreamPython: 5 star-like alerts (classtar >= 0.9) from ztf-loop (subscription {PYTHON_SUBSCRIPTION})",
            {**stream_filter, "subscription_name": PYTHON_SUBSCRIPTION, "classtar_threshold": 0.9,
             "classtar_gt_lt": "gt", "max_results": 5, "timeout": 10, "max_backlog": 50, "save_metadata": "yes"},
        ),
        (
            BrokerStreamRest,
            "StreamRest: 5 Rubin/LSST alerts from lsst-alerts",
            {"survey": "lsst", "subscription_name": LSST_TOPIC, "classtar_gt_lt": "lt", "max_results": 5,
             "timeout": 5},
        ),
        (
            BrokerDatabasePython,
            f"DatabasePython: Rubin/LSST object {lsst_records[0]['diaObject']['diaObjectId']}",
            {"survey": "lsst", "objectId": str(lsst_records[0]["diaObject"]["diaObjectId"]), "candid": "",
             "max_results": 5},
        ),
    ]
    from tom_alerts.models import BrokerQuery

    for broker, name, fields in queries:
        BrokerQuery.objects.filter(name=name).delete()
        form = broker.form(data={"query_name": name, "broker": broker.name, **fields})
        if not form.is_valid():
            raise SystemExit(f"demo query {name!r} is invalid: {form.errors.as_text()}")
        yield form.save()


def run_saved_query(query) -> None:
    from django.core.management import call_command
    from tom_dataproducts.models import PhotometryReducedDatum
    from tom_targets.models import Target

    from tom_pittgoogle.models import Alert

    alerts_before, targets_before = Alert.objects.count(), set(Target.objects.values_list("name", flat=True))
    output = io.StringIO()
    call_command("runbrokerquery", query.name, stdout=output)
    lines = output.getvalue().splitlines()
    fetched = sum(1 for line in lines if line.startswith(("Created target", "WARNING")))
    new_targets = Target.objects.filter(name__in=set(Target.objects.values_list("name", flat=True)) - targets_before)
    points = {target.name: PhotometryReducedDatum.objects.filter(target=target).count() for target in new_targets}
    print(f"== {query.broker} :: {query.name}")
    print(f"   fetched {fetched} alerts; stored {Alert.objects.count() - alerts_before} new alerts in the TOM")
    print("   new Targets (light-curve points): "
          + (", ".join(f"{name} ({count})" for name, count in sorted(points.items())) or "(none new)"))


def heartbeat(stop: threading.Event) -> None:
    """Publish one new sample alert a second to ztf-loop, as Pitt-Google's heartbeat stream does."""
    from tom_pittgoogle.core.pubsub import publisher_client
    from tom_pittgoogle.demo.sample_alerts import make_packets

    publisher = publisher_client()
    topic = f"projects/{PITTGOOGLE_PROJECT}/topics/{TOPIC}"
    seed = 10_000
    while not stop.is_set():
        seed += 1
        for packet in make_packets(10, seed=seed):
            if stop.wait(1.0):
                return
            publisher.publish(topic, packet)


def serve(port: int) -> None:
    """Serve the TOM (and its static files) until Ctrl-C; a taken port raises OSError.

    Django's ``runserver`` command would end the whole process with ``os._exit`` on a taken port, which no
    ``finally`` survives: the emulators would be left running. Its server function raises instead.
    """
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application

    stop = threading.Event()
    threading.Thread(target=heartbeat, args=(stop,), name="ztf-loop-heartbeat", daemon=True).start()
    print(f"\nServing the demo TOM on http://127.0.0.1:{port}/ (user {DEMO_USER}, password {DEMO_USER}); "
          "Alerts -> Queries has the saved queries. Ctrl-C stops it and the emulators.\n")
    try:
        run("127.0.0.1", port, StaticFilesHandler(get_wsgi_application()), ipv6=False, threading=True)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()


if __name__ == "__main__":
    raise SystemExit(_main_interruptible())
