"""``python manage.py pittgoogle_prune``: delete stored alerts and rejected messages past their retention.

    python manage.py pittgoogle_prune                      # the settings' retentions (a scheduled run)
    python manage.py pittgoogle_prune --older-than 7       # alerts stored more than 7 days ago

Alerts of a Target's object are kept unless --include-targets; see :mod:`tom_pittgoogle.core.prune`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tom_pittgoogle import conf
from tom_pittgoogle.core.prune import BATCH_SIZE, prune
from tom_pittgoogle.management.options import number_option

#: The longest retention a command accepts (days): 100 years. Beyond it the cutoff date would be before year 1.
MAX_DAYS = 36525
#: The most rows one transaction deletes: more would hold a long lock on a table the ingester writes.
MAX_BATCH_SIZE = 1_000_000


_days = number_option(float, 0, MAX_DAYS, unit="days")
_batch_size = number_option(int, 1, MAX_BATCH_SIZE)


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
