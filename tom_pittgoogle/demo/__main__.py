"""The embedded default: Pitt-Google's services on local emulators, fed with sample alerts, and a demo TOM.

    python -m tom_pittgoogle.demo [--no-serve] [--port 8000] [--dir demo-tom] [--alerts 40]
    python -m tom_pittgoogle.demo emulators [--alerts 40] [--dir demo-tom]

Starts the Pub/Sub emulator and the BigQuery emulator with Pitt-Google's topics and tables and sample ZTF and
Rubin/LSST alerts (:mod:`tom_pittgoogle.demo.services`), creates a demo TOM (SQLite), saves one query per route
through each broker's own form (each stream query with a subscription of its own), runs them with TOM Toolkit's
``runbrokerquery``, prints what each fetched and which Targets it made, then serves the TOM on 127.0.0.1 (user
``demo``, password ``demo``) while new alerts keep coming and an ingester (``manage.py pittgoogle_stream``, on a
subscription of its own) stores them, as a TOM's night runs. Each run publishes other sample alerts than the
last. The emulators and the ingester stop on every exit (Ctrl-C, SIGTERM, an error); a taken port is refused
before anything starts. No Google account is needed.

``emulators`` only starts the emulators with Pitt-Google's topics, tables and sample alerts, keeps publishing,
and prints the two lines that point a TOM of your own at them (as ``manage.py pittgoogle_emulators`` does).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from tom_pittgoogle.core.words import count
from tom_pittgoogle.demo.services import (
    LSST_TOPIC,
    TOPIC,
    Publisher,
    load_samples,
    running_emulators,
    stop_on_signals,
)

DEMO_USER = "demo"
#: The subscriptions of the demo's stream queries, one per query, all attached to ztf-loop: two queries on one
#: subscription would share (and so split) its messages.
REST_SUBSCRIPTION = "ztf-loop-demo-rest"
PYTHON_SUBSCRIPTION = "ztf-loop-demo-python"
#: The demo's ingester listens here, so that it never takes the queries' alerts.
INGESTER_SUBSCRIPTION = "ztf-loop-demo-ingester"

logger = logging.getLogger("tom_pittgoogle.demo")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tom_pittgoogle.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-serve", action="store_true", help="stop after the queries instead of serving")
    parser.add_argument("--port", type=int, default=8000, help="port of the TOM's web server (default 8000)")
    parser.add_argument("--dir", default="demo-tom", help="folder of the demo TOM's database and logs")
    parser.add_argument("--alerts", type=int, default=40, help="sample alerts to publish and load (default 40)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["emulators"]:
        return emulators_only(argv[1:])
    args = parse_args(argv)
    from tom_pittgoogle.demo.emulators import EmulatorError, port_is_free

    if not args.no_serve and not port_is_free(args.port):
        print(f"Port {args.port} is already in use on 127.0.0.1: stop what uses it, or choose another port with "
              f"--port (make demo DEMO_ARGS=\"--port {args.port + 1}\").", file=sys.stderr)
        return 2
    workdir = _prepare(args.dir)
    stop_on_signals()
    try:
        with running_emulators(workdir / "logs") as (_, bigquery):
            import django

            django.setup()
            run_demo(args, bigquery.endpoint, workdir)
            if not args.no_serve:
                serve(args.port, workdir)
    except EmulatorError as error:
        print(f"The demo could not start an emulator: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the port was taken meanwhile
        print(f"The demo TOM could not listen on 127.0.0.1:{args.port}: {error.strerror or error}; choose "
              "another port with --port.", file=sys.stderr)
        return 2
    return 0


def _prepare(folder: str) -> Path:
    """The demo's folder (with its logs), logging, and the demo TOM's settings for this process and its children."""
    workdir = Path(folder).resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    os.environ["PITTGOOGLE_DEMO_DIR"] = str(workdir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tom_pittgoogle.demo.tom_settings"
    return workdir


def emulators_only(argv: list[str]) -> int:
    """``python -m tom_pittgoogle.demo emulators``: the emulators for a TOM of your own (the demo TOM's settings
    choose the project the default subscriptions are made in; your TOM makes its own when it first pulls)."""
    parser = argparse.ArgumentParser(prog="python -m tom_pittgoogle.demo emulators",
                                     description="Pitt-Google's services on the emulators, for a TOM of your own.")
    parser.add_argument("--alerts", type=int, default=40, help="sample ZTF alerts to publish and load (default 40)")
    parser.add_argument("--dir", default="demo-tom", help="folder of the emulators' logs (default demo-tom)")
    args = parser.parse_args(argv)
    workdir = _prepare(args.dir)
    import django

    django.setup()
    from tom_pittgoogle.demo.services import serve_emulators

    return serve_emulators(args.alerts, workdir / "logs")


def _main_interruptible() -> int:
    try:
        return main()
    except KeyboardInterrupt:
        return 0


def run_demo(args: argparse.Namespace, bigquery_endpoint: str, workdir: Path) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    if not user_model.objects.filter(username=DEMO_USER).exists():
        user_model.objects.create_superuser(DEMO_USER, "demo@example.org", DEMO_USER)

    run = _next_run(workdir)
    print()
    # Another run, other sample alerts: a second demo shows new alerts and Targets, not "0 new" everywhere.
    samples = load_samples(bigquery_endpoint, args.alerts, seed=2024 + run, lsst_seed=10 + run % 80,
                           ztf_subscriptions=(REST_SUBSCRIPTION, PYTHON_SUBSCRIPTION, INGESTER_SUBSCRIPTION))
    print()
    for query in save_queries(samples.ztf, samples.lsst):
        run_saved_query(query)


def _next_run(workdir: Path) -> int:
    """This run's number in ``workdir`` (1 for the first), kept in a file there."""
    counter = workdir / "runs"
    try:
        previous = int(counter.read_text().strip() or 0)
    except (OSError, ValueError):
        previous = 0
    counter.write_text(f"{previous + 1}\n")
    return previous + 1


def history_object(records: list[dict]) -> str:
    """The object with the richest light curve among the sample alerts: most alerts, then most history."""
    alerts_per_object = Counter(record["objectId"] for record in records)
    richest = max(records, key=lambda r: (alerts_per_object[r["objectId"]], len(r.get("prv_candidates") or [])))
    return richest["objectId"]


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
    from django.utils import timezone
    from tom_alerts.alerts import get_service_class
    from tom_dataproducts.models import PhotometryReducedDatum
    from tom_targets.models import Target

    from tom_pittgoogle.adapters.route_table import BIGQUERY
    from tom_pittgoogle.models import Alert

    alerts_before, targets_before = Alert.objects.count(), set(Target.objects.values_list("name", flat=True))
    output = io.StringIO()
    call_command("runbrokerquery", query.name, stdout=output)
    # runbrokerquery leaves Last Run empty; the Alerts page shows it.
    type(query).objects.filter(pk=query.pk).update(last_run=timezone.now())
    lines = output.getvalue().splitlines()
    fetched = sum(1 for line in lines if line.startswith(("Created target", "WARNING")))
    new_targets = Target.objects.filter(name__in=set(Target.objects.values_list("name", flat=True)) - targets_before)
    points = {target.name: PhotometryReducedDatum.objects.filter(target=target).count() for target in new_targets}
    stored = Alert.objects.count() - alerts_before
    print(f"== {query.broker} :: {query.name}")
    searched = get_service_class(query.broker).route is BIGQUERY  # a search stores no alerts, a pull does
    print(f"   fetched {count(fetched, 'alert')}"
          + ("" if searched else f"; stored {count(stored, 'new alert')} in the TOM"))
    print("   new Targets (light-curve points): "
          + (", ".join(f"{name} ({points})" for name, points in sorted(points.items())) or "(none new)"))


class Ingester:
    """``manage.py pittgoogle_stream`` on the demo's own subscription, in a process of its own (as a TOM runs it
    all night); stopped with SIGTERM, as a service manager does, so that it stores what is in flight."""

    def __init__(self, workdir: Path) -> None:
        import subprocess

        self.log_path = workdir / "logs" / "pittgoogle_stream.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 -- closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "pittgoogle_stream", "--subscription", INGESTER_SUBSCRIPTION,
             "--progress-interval", "30"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ),
            start_new_session=True,  # Ctrl-C in the terminal reaches the demo, which stops it in order
        )

    def stop(self) -> None:
        import subprocess

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def serve(port: int, workdir: Path) -> None:
    """Serve the TOM (and its static files) until Ctrl-C, with new alerts coming and an ingester storing them; a
    taken port raises OSError.

    Django's ``runserver`` command would end the whole process with ``os._exit`` on a taken port, which no
    ``finally`` survives: the emulators would be left running. Its server function raises instead.
    """
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application

    with contextlib.ExitStack() as running:
        publisher = Publisher().start()
        running.callback(publisher.stop)
        ingester = Ingester(workdir)
        running.callback(ingester.stop)
        site = f"http://127.0.0.1:{port}"
        print(f"""
Serving the demo TOM on {site}/ (user {DEMO_USER}, password {DEMO_USER}).
  New alerts keep coming: ZTF on {TOPIC} one a second, Rubin/LSST on {LSST_TOPIC} one every few seconds.
  An ingester (manage.py pittgoogle_stream --subscription {INGESTER_SUBSCRIPTION}, pid {ingester.process.pid})
  stores the ZTF ones as they come; its log is {ingester.log_path}.
  - Alerts ({site}/alerts/query/list/): the saved queries of each route; Run one, tick alerts, Create Targets.
  - Data Services ({site}/tom_dataservices/query/create/?data_service=Pitt-Google): search BigQuery, pull
    Pub/Sub, or page through the alerts the ingester stored (route "Stored alerts").
  - Ingester status: {site}/pittgoogle/status/
Ctrl-C stops the server, the ingester and the emulators.
""", flush=True)
        try:
            run("127.0.0.1", port, StaticFilesHandler(get_wsgi_application()), ipv6=False, threading=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    raise SystemExit(_main_interruptible())
