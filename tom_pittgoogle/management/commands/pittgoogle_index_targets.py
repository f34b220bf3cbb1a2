"""``python manage.py pittgoogle_index_targets``: bring the positional index of the Targets up to date.

    python manage.py pittgoogle_index_targets

The app indexes a Target whenever it is saved or deleted; Targets created without Django's signals
(``Target.objects.bulk_create``, raw SQL, a database restore) are not matched by position until this runs.
Running it again changes nothing. See :func:`tom_pittgoogle.core.matching.reindex_targets`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tom_pittgoogle.core.matching import reindex_targets
from tom_pittgoogle.management.options import number_option

_batch_size = number_option(int, 1, 100_000)


class Command(BaseCommand):
    help = (
        "Index the position of every Target with coordinates, so that alerts match Targets created without "
        "Django's signals (bulk_create, raw SQL); a second run changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=_batch_size, default=5000, metavar="N",
                            help="Index rows written per statement (default 5000).")

    def handle(self, *args: Any, **options: Any) -> None:
        report = reindex_targets(batch_size=options["batch_size"])
        self.stdout.write(self.style.SUCCESS(report.line()))
