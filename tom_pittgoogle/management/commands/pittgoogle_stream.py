"""``python manage.py pittgoogle_stream``: listen to Pitt-Google streams all night, storing every alert once.

A thin shell over :class:`~tom_pittgoogle.core.engine.StreamIngester`: it reads the options and settings, reports
progress, and turns signals into a clean stop.

    python manage.py pittgoogle_stream --subscription ztf-loop --classtar-threshold 0.5 --classtar-gt-lt lt
    python manage.py pittgoogle_stream          # every stream in settings.PITTGOOGLE_STREAMS

Ctrl-C or SIGTERM: stop pulling, store what is in flight, acknowledge only what is stored, exit 0. A second
signal exits at once (status 128 + the signal's number) without acknowledging anything unstored; Pub/Sub
redelivers what was not acknowledged, and storage ignores what is already there.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tom_pittgoogle import conf
from tom_pittgoogle.core.engine import DEFAULT_MAX_BACKLOG, MAX_BATCH, IngestStats, Stream, StreamIngester, alert_filter
from tom_pittgoogle.core.filters import CLASSTAR_COMPARISONS
from tom_pittgoogle.core.heartbeat import Heartbeat
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
        parser.add_argument("--progress-interval", type=_positive_float, default=10.0, metavar="SECONDS",
                            help="Seconds between progress lines (default 10).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            streams = self._streams(options)
            heartbeat = Heartbeat([s.name for s in streams], progress_interval=options["progress_interval"])
            ingester = StreamIngester(
                streams,
                max_backlog=options["max_backlog"],
                batch_size=options["batch_size"],
                target_maker=_target_maker(options["targets_for"]) if any(s.create_targets for s in streams) else None,
                progress=heartbeat.reporter(self._report),
                progress_interval=options["progress_interval"],
            )
        except PittGoogleError as error:
            raise CommandError(str(error)) from None
        heartbeat.start(ingester)
        error = None
        # Handlers first: whoever reads "Ctrl-C to stop" may send the signal at once.
        previous = self._install_signal_handlers(ingester)
        self.stdout.write(f"listening to {', '.join(s.name for s in streams)} (Ctrl-C to stop)")
        self.stdout.flush()
        try:
            stats = ingester.run(max_results=options["max_results"], timeout=options["timeout"])
        except PittGoogleError as failure:
            error = f"stopped: {failure}"
            raise CommandError(error) from None
        except Exception as failure:  # the database refused a batch: nothing of it was acknowledged
            error = f"stopped: could not store alerts ({type(failure).__name__}: {failure})"
            raise CommandError(error) from None
        finally:
            heartbeat.stopped(error)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
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
                   save_metadata=not options["no_metadata"], survey=options["survey"])
            for name in names
        ]

    def _report(self, stats: IngestStats, line: str) -> None:
        if stats.finished:  # the run's summary: printed once, by handle(), after the heartbeat's last word
            return
        self.stdout.write(line)
        self.stdout.flush()

    def _install_signal_handlers(self, ingester: StreamIngester) -> dict:
        def handle(signum: int, frame: Any) -> None:
            if ingester.stopping:
                # Exit now: whatever was not acknowledged comes back to the subscription.
                self.stderr.write(f"{signal.Signals(signum).name} again: exiting without storing what is in flight")
                self.stderr.flush()
                os._exit(128 + signum)
            # Stop first, then say so: a second signal may be handled as soon as the line is out (even inside
            # this handler), and must find the ingester stopping.
            ingester.stop()
            self.stderr.write(
                f"{signal.Signals(signum).name}: storing what is in flight, then stopping (again to exit at once)"
            )
            self.stderr.flush()

        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handle)
        return previous


def _target_maker(username: str | None):
    """Create or update the Target of an alert, with its extras, aliases and light curve (as the brokers do)."""
    from django.contrib.auth import get_user_model

    from tom_pittgoogle.core.targets import create_or_update_target

    user = None
    if username:
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"--targets-for: no TOM user {username!r}") from None

    def make_target(alert):
        return create_or_update_target(alert, user=user)

    return make_target
