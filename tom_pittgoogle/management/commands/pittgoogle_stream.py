"""``python manage.py pittgoogle_stream``: listen to Pitt-Google streams all night, storing every alert once.

A thin shell over :class:`~tom_pittgoogle.core.runner.IngesterRunner` (the ingester with its heartbeat, as the
alert stream runs it too): it reads the options and settings, reports progress, and turns signals into a clean
stop.

    python manage.py pittgoogle_stream --subscription ztf-loop --classtar-threshold 0.5 --classtar-gt-lt lt
    python manage.py pittgoogle_stream          # every stream in settings.PITTGOOGLE_STREAMS
    python manage.py pittgoogle_stream --survey lsst --subscription lsst-variability-likely \
        --topic lsst-variability --pg-variable likely      # Pub/Sub drops the rest before delivery

Ctrl-C or SIGTERM: stop pulling, store what is in flight, acknowledge only what is stored, exit 0. A second
signal exits at once (status 128 + the signal's number) without acknowledging anything unstored; Pub/Sub
redelivers what was not acknowledged, and storage ignores what is already there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tom_pittgoogle import conf
from tom_pittgoogle.core.engine import (
    DEFAULT_MAX_BACKLOG,
    MAX_BATCH,
    IngestStats,
    Stream,
    alert_filter,
    stream_server_filter,
)
from tom_pittgoogle.core.filters import ATTRIBUTE_KEYS, CLASSTAR_COMPARISONS, UPSILON_BANDS
from tom_pittgoogle.core.heartbeat import MAX_PROGRESS_INTERVAL
from tom_pittgoogle.core.runner import (
    IngesterRunner,
    find_user,
    install_signal_handler,
    restore_signal_handlers,
    stop_on_signal,
)
from tom_pittgoogle.exceptions import PittGoogleError
from tom_pittgoogle.management.options import number_option

#: The largest count an option takes (alerts, messages): far beyond a night, within what gRPC's flow control and
#: the database accept.
MAX_COUNT = 2**31 - 1
#: The longest --timeout: a year of silence.
MAX_TIMEOUT = 365 * 86400.0

_positive_int = number_option(int, 1, MAX_COUNT)
_unit_interval = number_option(float, 0, 1)
_finite = number_option(float)


def _seconds(largest: float) -> Callable[[str], float]:
    """A number of seconds above 0 and at most ``largest`` (inf, NaN and 1e300 are no time to wait)."""
    return number_option(float, 0, largest, above=True, unit="seconds")


#: The options that make the filter of a stream named with --subscription (PITTGOOGLE_STREAMS' streams carry their
#: own): their destination and their value when not given.
FILTER_OPTIONS = {"classtar_threshold": None, "reliability_threshold": None, "cone": None, "start": None,
                  "end": None, "score_name": None, "score_min": None, "predicted_class": None, "survey": None,
                  "create_targets": False, "no_metadata": False, "classtar_gt_lt": "lt", "topic": None,
                  **{key: None for key in ATTRIBUTE_KEYS}}


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
                            help="Whose alerts: the Pitt-Google topic a new subscription attaches to, and the "
                                 "default subscription without --subscription (ztf-loop for ztf, the default; "
                                 "lsst-alerts for lsst).")
        parser.add_argument("--classtar-threshold", type=_unit_interval, metavar="SCORE",
                            help="ZTF: keep alerts by star/galaxy score (0-1); alerts without a score never pass.")
        parser.add_argument("--classtar-gt-lt", choices=[value for value, _ in CLASSTAR_COMPARISONS], default="lt",
                            help="lt: keep scores below the threshold; gt: at or above it (default lt).")
        parser.add_argument("--reliability-threshold", type=_unit_interval, metavar="SCORE",
                            help="LSST: keep alerts whose reliability is at or above this (0-1).")
        parser.add_argument("--cone", nargs=3, type=_finite, metavar=("RA", "DEC", "RADIUS_ARCSEC"),
                            help="Keep alerts within RADIUS_ARCSEC of RA, DEC (degrees), by exact distance.")
        parser.add_argument("--start", metavar="UTC", help="Keep alerts observed at or after this time (ISO 8601, "
                                                           "UTC, e.g. 2025-11-15T03:00).")
        parser.add_argument("--end", metavar="UTC", help="Keep alerts observed before this time (ISO 8601, UTC).")
        parser.add_argument("--score-name", metavar="NAME",
                            help="With --score-min: keep alerts whose score NAME (e.g. drb, reliability, a "
                                 "classifier's probability) is at least the minimum.")
        parser.add_argument("--score-min", type=_finite, metavar="VALUE")
        parser.add_argument("--predicted-class", metavar="CLASS",
                            help="Keep alerts a classifier puts in CLASS (any case; classifier streams).")
        parser.add_argument("--topic", metavar="NAME",
                            help="The Pitt-Google topic a new subscription attaches to, when the subscription's name "
                                 "is not the topic's (a subscription of its own for a server-side filter).")
        attributes = parser.add_argument_group(
            "server-side filters", "On the message attributes Pitt-Google sets: the subscription is created with "
            "them as its Pub/Sub filter, so Google drops the other messages before delivery. A subscription's filter "
            "cannot change: an existing subscription must already have the same one.")
        attributes.add_argument("--pg-supernnova-class", metavar="CLASS",
                                help="SuperNNova topics: keep alerts whose predicted class is CLASS (e.g. 0 or 1).")
        attributes.add_argument("--pg-variable", choices=["likely", "unlikely"],
                                help="lsst-variability: keep alerts whose variability is this.")
        attributes.add_argument("--pg-upsilon-band", choices=UPSILON_BANDS,
                                help="lsst-upsilon: the band of --pg-upsilon-label / --pg-upsilon-flag.")
        attributes.add_argument("--pg-upsilon-label", metavar="LABEL",
                                help="lsst-upsilon: keep alerts with this UPSILoN label in the band (e.g. RRL_ab).")
        attributes.add_argument("--pg-upsilon-flag", choices=["0", "1"],
                                help="lsst-upsilon: keep alerts with this UPSILoN flag in the band.")
        attributes.add_argument("--pg-has-min-detections", choices=["0", "1"],
                                help="lsst-upsilon: 1 keeps alerts with enough points for UPSILoN in some band.")
        attributes.add_argument("--n-previous-detections", type=int, metavar="N",
                                help="LSST: keep alerts with exactly N previous detections (0: new objects).")
        attributes.add_argument("--is-pure", choices=["0", "1"], help="ztf-tagged: 1 keeps the pure alerts.")
        attributes.add_argument("--is-extragalactic-transient", choices=["0", "1"],
                                help="ztf-tagged: 1 keeps the likely extragalactic transients.")
        attributes.add_argument("--fid", choices=["1", "2", "3"], help="ztf-tagged: the band (1 g, 2 r, 3 i).")
        attributes.add_argument("--attribute-filter", metavar="EXPRESSION",
                                help='A Pub/Sub filter of your own, e.g. \'attributes.pg_variable = "likely"\' '
                                     "(with the options above: all must hold).")
        parser.add_argument("--max-results", type=_positive_int, metavar="N",
                            help="Stop after N alerts passed the filter and were stored.")
        parser.add_argument("--timeout", type=_seconds(MAX_TIMEOUT), metavar="SECONDS",
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
        parser.add_argument("--progress-interval", type=_seconds(MAX_PROGRESS_INTERVAL), default=10.0,
                            metavar="SECONDS",
                            help=f"Seconds between progress lines and heartbeats (default 10, at most "
                                 f"{MAX_PROGRESS_INTERVAL:g}).")

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
        # Handlers first: whoever reads "Ctrl-C to stop" may send the signal at once.
        previous = install_signal_handler(stop_on_signal(lambda: [runner], self._say))
        self.stdout.write(f"listening to {', '.join(s.name for s in streams)} (Ctrl-C to stop)")
        self.stdout.flush()
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
        if not names and options["survey"] is None:
            configured = streams_from_settings()
            if configured:
                given = [name for name, unset in FILTER_OPTIONS.items() if options.get(name, unset) != unset]
                if given:
                    raise CommandError(
                        f"--{', --'.join(name.replace('_', '-') for name in given)}: without --subscription the "
                        "streams of settings.PITTGOOGLE_STREAMS run, each with its own filter; give --subscription "
                        "to run one stream with these options."
                    )
                return configured
        survey = options["survey"] or "ztf"
        # Each filter on a field the survey's alerts have, or refused: never one that silently keeps nothing.
        if survey != "ztf" and options["classtar_threshold"] is not None:
            raise CommandError("--classtar-threshold: classtar is a ZTF field; for Rubin/LSST filter on "
                               "--reliability-threshold.")
        if survey != "lsst" and options["reliability_threshold"] is not None:
            raise CommandError("--reliability-threshold: reliability is a Rubin/LSST field; for ZTF filter on "
                               "--classtar-threshold (or give --survey lsst).")
        if not names:
            names = [conf.survey_default_subscription(survey)]
        cone = options["cone"] or (None, None, None)
        parameters = {
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
            **{key: options[key] for key in ATTRIBUTE_KEYS},  # the options are named as the fields
        }
        callback, server_filter = alert_filter(parameters), stream_server_filter(parameters)
        return [
            Stream(name, callback=callback, create_targets=options["create_targets"],
                   save_metadata=not options["no_metadata"], survey=options["survey"],
                   server_filter=server_filter, topic=options["topic"],
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
