"""``python manage.py pittgoogle_prune``: delete stored alerts and rejected messages past their retention.

    python manage.py pittgoogle_prune                      # the settings' retentions (a scheduled run)
    python manage.py pittgoogle_prune --older-than 7       # alerts stored more than 7 days ago

Alerts of a Target's object are kept unless --include-targets; see :mod:`tom_pittgoogle.core.prune`.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tom_pittgoogle import conf
from tom_pittgoogle.core.prune import BATCH_SIZE, prune

#: The longest retention a command accepts (days): 100 years. Beyond it the cutoff date would be before year 1.
MAX_DAYS = 36525
#: The most rows one transaction deletes: more would hold a long lock on a table the ingester writes.
MAX_BATCH_SIZE = 1_000_000


def _days(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 <= number <= MAX_DAYS:  # False for NaN
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days from 0 to {MAX_DAYS}")
    return number


def _batch_size(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 1 to {MAX_BATCH_SIZE}")
    return number


class Command(BaseCommand):
    help = (
        "Delete stored alerts stored more than --older-than days ago (except those of a Target's object, unless "
        "--include-targets) and rejected messages older than --rejected-older-than days, in short batches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=_days, metavar="DAYS",
                            help="Alerts stored more than DAYS ago (default: settings.PITTGOOGLE_ALERT_RETENTION_DAYS, "
                                 f"{conf.DEFAULTS['PITTGOOGLE_ALERT_RETENTION_DAYS']}).")
        parser.add_argument("--rejected-older-than", type=_days, metavar="DAYS",
                            help="Rejected messages received more than DAYS ago (default: settings."
                                 "PITTGOOGLE_REJECTED_RETENTION_DAYS, "
                                 f"{conf.DEFAULTS['PITTGOOGLE_REJECTED_RETENTION_DAYS']}).")
        parser.add_argument("--include-targets", action="store_true",
                            help="Delete old alerts of Targets' objects too (their light curves on the Targets stay).")
        parser.add_argument("--batch-size", type=_batch_size, default=BATCH_SIZE, metavar="N",
                            help=f"Rows deleted per transaction (default {BATCH_SIZE}).")

    def handle(self, *args: Any, **options: Any) -> None:
        report = prune(options["older_than"], rejected_older_than_days=options["rejected_older_than"],
                       include_targets=options["include_targets"], batch_size=options["batch_size"])
        self.stdout.write(self.style.SUCCESS(report.line()))
