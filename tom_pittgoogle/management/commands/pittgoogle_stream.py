"""``python manage.py pittgoogle_stream``: listen to Pitt-Google streams all night, storing every alert once.

A thin shell over :class:`~tom_pittgoogle.core.runner.IngesterRunner` (the ingester with its heartbeat, as the
alert stream runs it too): it reads the options and settings, reports progress, and turns signals into a clean
stop.

    python manage.py pittgoogle_stream --subscription ztf-loop --classtar-threshold 0.5 --classtar-gt-lt lt
    python manage.py pittgoogle_stream          # every stream in settings.PITTGOOGLE_STREAMS

Ctrl-C or SIGTERM: stop pulling, store what is in flight, acknowledge only what is stored, exit 0. A second
signal exits at once (status 128 + the signal's number) without acknowledging anything unstored; Pub/Sub
redelivers what was not acknowledged, and storage ignores what is already there.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tom_pittgoogle import conf
from tom_pittgoogle.core.engine import DEFAULT_MAX_BACKLOG, MAX_BATCH, IngestStats, Stream, alert_filter
from tom_pittgoogle.core.filters import CLASSTAR_COMPARISONS
from tom_pittgoogle.core.runner import (
    IngesterRunner,
    find_user,
    install_signal_handler,
    restore_signal_handlers,
    stop_on_signal,
)
from tom_pittgoogle.exceptions import PittGoogleError


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(value)
    return number


def _unit_interval(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Listen to Pitt-Google Pub/Sub subscriptions (created if missing) and store every alert that passes the "
        "filter once, acknowledging each message only after it is stored. Without --subscription, runs the "
        "streams in settings.PITTGOOGLE_STREAMS, or the default subscription."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--subscription",
            action="append",
            dest="subscriptions",
            metavar="NAME",
            help="Subscription to listen to (repeat for several); attached to the Pitt-Google topic of that name.",
        )
        parser.add_argument("--survey", choices=["ztf", "lsst"], default=None,
                            help="Whose Pitt-Google topic a new subscription attaches to (default ztf).")
        parser.add_argument("--classtar-threshold", type=_unit_interval, metavar="SCORE",
                            help="ZTF: keep alerts by star/galaxy score (0-1); alerts without a score never pass.")
        parser.add_argument("--classtar-gt-lt", choices=[value for value, _ in CLASSTAR_COMPARISONS], default="lt",
                            help="lt: keep scores below the threshold; gt: at or above it (default lt).")
        parser.add_argument("--reliability-threshold", type=_unit_interval, metavar="SCORE",
                            help="LSST: keep alerts whose reliability is at or above this (0-1).")
        parser.add_argument("--cone", nargs=3, type=float, metavar=("RA", "DEC", "RADIUS_ARCSEC"),
                            help="Keep alerts within RADIUS_ARCSEC of RA, DEC (degrees), by exact distance.")
        parser.add_argument("--start", metavar="UTC", help="Keep alerts observed at or after this time (ISO 8601, "
                                                           "UTC, e.g. 2025-11-15T03:00).")
        parser.add_argument("--end", metavar="UTC", help="Keep alerts observed before this time (ISO 8601, UTC).")
        parser.add_argument("--score-name", metavar="NAME",
                            help="With --score-min: keep alerts whose score NAME (e.g. drb, reliability, a "
                                 "classifier's probability) is at least the minimum.")
        parser.add_argument("--score-min", type=float, metavar="VALUE")
        parser.add_argument("--predicted-class", metavar="CLASS",
                            help="Keep alerts a classifier puts in CLASS (any case; classifier streams).")
        parser.add_argument("--max-results", type=_positive_int, metavar="N",
                            help="Stop after N alerts passed the filter and were stored.")
        parser.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                            help="Stop after this many seconds without a message (default: never).")
        parser.add_argument("--max-backlog", type=_positive_int, default=DEFAULT_MAX_BACKLOG, metavar="N",
                            help=f"Flow control: most messages leased and not yet stored, per subscription "
                                 f"(default {DEFAULT_MAX_BACKLOG}).")
        parser.add_argument("--batch-size", type=_positive_int, default=MAX_BATCH, metavar="N",
                            help=f"Most alerts stored in one transaction (default {MAX_BATCH}).")
        parser.add_argument("--create-targets", action="store_true",
                            help="Create or update a TOM Target (extras, aliases, light curve) for each alert that "
                                 "passes the filter.")
        parser.add_argument("--targets-for", metavar="USERNAME",
                            help="With --create-targets: give this TOM user access to the Targets.")
        parser.add_argument("--no-metadata", action="store_true", help="Do not store the message ids.")
        parser.add_argument("--follow-list", metavar="TARGETLIST",
                            help="Attach alerts only to the Targets of this TargetList (default: "
                                 "PITTGOOGLE_FOLLOW_TARGET_LIST, else every Target).")
        parser.add_argument("--progress-interval", type=_positive_float, default=10.0, metavar="SECONDS",
                            help="Seconds between progress lines (default 10).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            streams = self._streams(options)
            self._check_follow_lists(streams)
            runner = IngesterRunner(
                streams,
                kind="pittgoogle_stream",
                progress_interval=options["progress_interval"],
                max_backlog=options["max_backlog"],
                batch_size=options["batch_size"],
                report=self._report,
                targets_user=self._targets_user(options["targets_for"]) if any(s.create_targets for s in streams)
                else None,
            )
        except PittGoogleError as error:
            raise CommandError(str(error)) from None
        runner.start()
        self.stdout.write(f"listening to {', '.join(s.name for s in streams)} (Ctrl-C to stop)")
        self.stdout.flush()
        previous = install_signal_handler(stop_on_signal(lambda: [runner], self._say))
        try:
            stats = runner.run(max_results=options["max_results"], timeout=options["timeout"],
                               describe_failure=_failure_line)
        except Exception as failure:  # a fatal stream error, or the database refused a batch (nothing acknowledged)
            raise CommandError(_failure_line(failure)) from None
        finally:
            restore_signal_handlers(previous)
        self.stdout.write(self.style.SUCCESS(f"done in {stats.elapsed:.1f} s: {stats.line()}"))

    def _streams(self, options: dict[str, Any]) -> list[Stream]:
        from tom_pittgoogle.core.engine import streams_from_settings

        names = options["subscriptions"]
        if not names:
            configured = streams_from_settings()
            if configured:
                return configured
            names = [conf.get("PITTGOOGLE_DEFAULT_SUBSCRIPTION")]
        cone = options["cone"] or (None, None, None)
        callback = alert_filter(
            {
                "classtar_threshold": options["classtar_threshold"],
                "classtar_gt_lt": options["classtar_gt_lt"],
                "reliability_threshold": options["reliability_threshold"],
                "cone_ra": cone[0],
                "cone_dec": cone[1],
                "cone_radius_arcsec": cone[2],
                "start_time": options["start"],
                "end_time": options["end"],
                "score_name": options["score_name"],
                "score_min": options["score_min"],
                "predicted_class": options["predicted_class"],
            }
        )
        return [
            Stream(name, callback=callback, create_targets=options["create_targets"],
                   save_metadata=not options["no_metadata"], survey=options["survey"],
                   follow_list=options["follow_list"])
            for name in names
        ]

    def _report(self, stats: IngestStats, line: str) -> None:
        if stats.finished:  # the run's summary: printed once, by handle(), after the heartbeat's last word
            return
        self.stdout.write(line)
        self.stdout.flush()

    def _say(self, line: str) -> None:
        self.stderr.write(line)
        self.stderr.flush()

    @staticmethod
    def _check_follow_lists(streams: list[Stream]) -> None:
        """Refuse to start with a followed TargetList that is not there (the alerts would reach no Target)."""
        from tom_targets.models import TargetList

        from tom_pittgoogle.core.matching import followed_list

        for stream in streams:
            name = followed_list(stream.follow_list)
            if name and not TargetList.objects.filter(name=name).exists():
                raise CommandError(f"There is no TargetList named {name!r} to follow (--follow-list or "
                                   "PITTGOOGLE_FOLLOW_TARGET_LIST).")

    @staticmethod
    def _targets_user(username: str | None) -> Any:
        """The user given access to created Targets (``--targets-for``), or None."""
        if not username:
            return None
        user = find_user(username)
        if user is None:
            raise CommandError(f"--targets-for: no TOM user {username!r}")
        return user


def _failure_line(failure: Exception) -> str:
    if isinstance(failure, PittGoogleError):
        return f"stopped: {failure}"
    return f"stopped: could not store alerts ({type(failure).__name__}: {failure})"
