"""``python manage.py pittgoogle_emulators``: try a TOM on Pitt-Google's services before using Google.

Starts the Pub/Sub and BigQuery emulators with Pitt-Google's topics (ZTF's ``ztf-loop`` in
``ardent-cycling-243415``, Rubin/LSST's ``lsst-alerts`` in ``pitt-alert-broker``), their alert tables and sample
alerts, keeps publishing new ones, and prints the two ``export`` lines that point this TOM's web server and
commands at them. Ctrl-C or SIGTERM stops both emulators. The same start-up as the demo's
(:func:`tom_pittgoogle.demo.services.serve_emulators`).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Start the Pub/Sub and BigQuery emulators with Pitt-Google's topics, tables and sample alerts (ZTF and "
        "Rubin/LSST), keep publishing new alerts, and print the environment lines that point this TOM at them. "
        "Ctrl-C stops both emulators."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--alerts", type=int, default=40, metavar="N",
                            help="Sample ZTF alerts to publish and load at the start (default 40).")
        parser.add_argument("--log-dir", metavar="FOLDER",
                            help="Folder of the emulators' logs (default: a temporary folder).")

    def handle(self, *args: Any, **options: Any) -> None:
        from tom_pittgoogle.demo.services import serve_emulators

        if options["alerts"] < 1:
            raise CommandError("--alerts: give a number of alerts of at least 1.")
        if serve_emulators(options["alerts"], options["log_dir"]) != 0:
            raise CommandError("the emulators could not start (see above).")
