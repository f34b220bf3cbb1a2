"""``python manage.py pittgoogle_status``: each ingester's heartbeat and the newest rejected messages.

Exits 1 when an ingester is late (it has not stopped and wrote no heartbeat within
``PITTGOOGLE_HEARTBEAT_LATE_SECONDS``) or a stream falls behind (its alerts' time from Pitt-Google to the TOM
grows), 0 otherwise: a check for a monitoring system. It also prints each stream's latency percentiles.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tom_pittgoogle.core.heartbeat import REJECTED_SHOWN, ingester_status, status_text
from tom_pittgoogle.management.options import number_option

#: The most rejected messages listed: the newest ones say what is wrong; the rest are in the admin.
MAX_REJECTED_SHOWN = 10_000


_count = number_option(int, 0, MAX_REJECTED_SHOWN)


class Command(BaseCommand):
    help = ("Show each Pitt-Google ingester's heartbeat, each stream's latency and the newest rejected messages; "
            "exit 1 if an ingester is late or a stream falls behind.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rejected", type=_count, default=REJECTED_SHOWN, metavar="N",
                            help=f"How many of the newest rejected messages to list (default {REJECTED_SHOWN}).")

    def handle(self, *args: Any, **options: Any) -> None:
        status = ingester_status(rejected=options["rejected"])
        self.stdout.write(status_text(status))
        problems = []
        if status.late:
            problems.append(f"{len(status.late)} ingester(s) late")
        if status.behind:
            problems.append(f"{len(status.behind)} stream(s) falling behind")
        if problems:
            self.stderr.write("; ".join(problems))
            self.stdout.flush()
            sys.exit(1)
