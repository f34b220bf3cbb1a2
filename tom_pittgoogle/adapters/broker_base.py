"""What the three TOM Toolkit brokers share: the alert mapping, error reporting and common form fields.

This module and the ``broker_*`` modules are the only ones that know TOM Toolkit's classes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import requests
from django.core.cache import cache
from django.core.management.base import CommandError
from django.db.models.signals import post_save
from django.dispatch import receiver
from tom_alerts.alerts import GenericAlert, GenericBroker, GenericQueryForm

from tom_pittgoogle import conf
from tom_pittgoogle.adapters.attribute_fields import with_attribute_fields
from tom_pittgoogle.adapters.query_fields import (  # noqa: F401  (survey_field: the brokers' name for it)
    GoogleAccountFormMixin,
    classtar_gt_lt_field,
    classtar_threshold_field,
    reliability_threshold_field,
    revalidate_parameters,
    subscription_field,
    survey_field,
    validate_subscription_name,
    with_selection_fields,
)
from tom_pittgoogle.adapters.query_messages import UserFacingError, report_failure
from tom_pittgoogle.adapters.query_subscriptions import subscription_and_survey  # noqa: F401  (the brokers' name)
from tom_pittgoogle.adapters.route_table import PUBSUB, Route, RunReport
from tom_pittgoogle.core import targets
from tom_pittgoogle.core.acting import current_actor, refuse_anonymous
from tom_pittgoogle.core.alerts import lighten_alert
from tom_pittgoogle.core.filters import AlertFilter, jd_to_datetime  # noqa: F401  (jd_to_datetime: kept here too)
from tom_pittgoogle.exceptions import PittGoogleError

logger = logging.getLogger(__name__)


class BrokerQueryError(UserFacingError, requests.HTTPError, CommandError):
    """A query that failed for a reason the user can act on, reported where TOM Toolkit reports things.

    ``RunQueryView`` shows an ``HTTPError``'s message on the results page instead of a server error, and
    ``runbrokerquery`` (a management command) prints a ``CommandError``'s message and exits 1 instead of a
    traceback; one exception does both. The page gets the message as HTML (escaped, its URL a link), the
    command line as plain text (:class:`~tom_pittgoogle.adapters.query_messages.UserFacingError`).
    """

    returncode = 1


@dataclass
class PittGoogleAlert(GenericAlert):
    """TOM Toolkit's ``GenericAlert`` with what a Target made from it carries: extras, aliases, light curve."""

    survey: str = "ztf"
    #: What ``score`` is (the results page's column heading): ``Reliability``, ``supernnova probability``...
    score_name: str = "Score"
    extras: dict = field(default_factory=dict)
    aliases: list = field(default_factory=list)
    #: The lightened alert: its light curve is stored on the Target when the Target is saved.
    alert: dict | None = field(default=None, repr=False)

    def to_target(self):
        """``(Target, extras, aliases)``, as TOM Toolkit's views and ``runbrokerquery`` expect.

        The Target is not saved yet, and TOM Toolkit's ``runbrokerquery`` never calls ``process_reduced_data``:
        the Target carries the alert, and its first save stores the light curve (:func:`_store_light_curve`),
        whoever saves it.
        """
        target, _, _ = super().to_target()
        if self.alert is not None:
            target.__dict__[_ALERT_ATTRIBUTE] = self.alert
        return target, dict(self.extras), list(self.aliases)


#: Where a Target made by :meth:`PittGoogleAlert.to_target` keeps its alert until it is saved.
_ALERT_ATTRIBUTE = "_pittgoogle_alert"


@receiver(post_save, dispatch_uid="tom_pittgoogle.adapters.broker_base.store_light_curve")
def _store_light_curve(sender, instance, **kwargs) -> None:
    """A Target made from a Pitt-Google alert gets the alert's light curve as soon as it has a primary key.

    Any model's save comes here (a TOM may use its own Target model); only an instance made by
    :meth:`PittGoogleAlert.to_target` carries the alert, and only its first save stores it.
    """
    alert = instance.__dict__.pop(_ALERT_ATTRIBUTE, None)
    if alert is not None:
        targets.save_photometry(instance, alert)


#: How long a results page's alerts are kept for the user to choose from: as long as TOM Toolkit keeps each
#: alert for its *Create Targets* button.
RESULTS_KEPT_SECONDS = 3600
#: The most alerts TOM Toolkit's results page shows (and caches).
RESULTS_SHOWN = 100

#: The fetched alerts a results page shows again instead of fetching (see :func:`showing_fetched_results`).
_shown_results: ContextVar[list | None] = ContextVar("pittgoogle_shown_results", default=None)


def _results_cache_key(key: str) -> str:
    actor = current_actor()
    user = getattr(getattr(actor, "user", None), "pk", None) if actor is not None else None
    return f"pittgoogle_results:{user}:{key}"


def remember_results(alerts: list[dict]) -> str:
    """Keep the alerts a results page shows (for the user who fetched them); returns their key."""
    key = uuid.uuid4().hex
    cache.set(_results_cache_key(key), list(alerts[:RESULTS_SHOWN]), RESULTS_KEPT_SECONDS)
    return key


def fetched_results(key: str) -> list[dict] | None:
    """The alerts :func:`remember_results` kept under ``key`` for this user; None once they are gone."""
    return cache.get(_results_cache_key(key)) if key else None


@contextmanager
def showing_fetched_results(alerts: list[dict]) -> Iterator[None]:
    """Within the block a broker's ``fetch_alerts`` returns ``alerts`` instead of fetching.

    TOM Toolkit's *Create Targets* sends the user back to the query's run page when a Target could not be
    made (its name taken, nothing selected); that page runs the query again, and a stream route would pull
    (and acknowledge) other alerts. The page the user is sent back to shows the alerts they chose from.
    """
    token = _shown_results.set(list(alerts))
    try:
        yield
    finally:
        _shown_results.reset(token)


#: The score column of the alerts table, per survey, and what the results page calls it.
_SCORE_FIELD = {"ztf": "classtar", "lsst": "reliability"}
SCORE_LABELS = {"classtar": "Star/galaxy (classtar)", "reliability": "Reliability"}


def _score(alert: Mapping[str, Any]) -> tuple[float | None, str]:
    """The survey's score column (classtar, reliability) or, on a stream without it (the lite and classifier
    topics), the first classifier's probability or score; with what it is, in the words of a column heading."""
    field_name = _SCORE_FIELD.get(alert["survey"], "classtar")
    score = alert.get(field_name)
    if score is not None:
        return score, SCORE_LABELS[field_name]
    for name, summary in (alert.get("classifiers") or {}).items():
        for kind in ("probability", "score"):
            if summary.get(kind) is not None:
                return summary[kind], f"{name} {kind}"
    return None, SCORE_LABELS[field_name]


def alert_to_generic_alert(alert: Mapping[str, Any]) -> PittGoogleAlert:
    """Map an alert (lightened, or a full survey record) to TOM Toolkit's ``GenericAlert``.

    A pure function of the alert: TOM Toolkit calls ``to_generic_alert`` on a new broker instance when it
    creates a Target from a cached alert. The name is the Target's name (:func:`targets.target_name`).
    """
    alert = lighten_alert(alert)
    source_id = alert["source_id"]
    score, score_name = _score(alert)
    return PittGoogleAlert(
        timestamp=jd_to_datetime(alert.get("jd")),
        url=conf.object_url(alert["survey"], alert["object_id"]),
        id=int(source_id) if str(source_id).isdigit() else source_id,
        name=targets.target_name(alert),
        ra=alert.get("ra"),
        dec=alert.get("dec"),
        mag=alert.get("mag"),
        score=score,
        score_name=score_name,
        survey=alert["survey"],
        extras=targets.target_extras(alert),
        aliases=targets.target_aliases(alert),
        alert=dict(alert),
    )


class PittGoogleBroker(GenericBroker):
    """Base of the three Pitt-Google brokers: subclasses implement :meth:`request_alerts`."""

    score_description = (
        "ZTF: star/galaxy score (classtar), near 1 for a star, near 0 for a galaxy. Rubin/LSST: reliability, "
        "the probability that the source is real. On classifier streams without them (ztf-lite, lsst-supernnova, "
        "...): the classifier's probability (or score) of its predicted class."
    )

    #: The route this broker takes (:mod:`tom_pittgoogle.adapters.route_table`): how its query runs and what an empty
    #: result means.
    route: Route = PUBSUB
    #: The results page: TOM Toolkit's, saying what was searched when nothing matched.
    template_name = "tom_pittgoogle/query_result.html"

    def fetch_alerts(self, parameters: dict) -> Iterator[dict]:
        """Fetch the alerts for ``parameters``; a failure is reported to the user, not raised as a crash.

        The whole fetch happens here, not lazily, so that TOM Toolkit sees any failure where it handles it.
        """
        self.nothing_matched = None
        self.notice = None
        self.results_key = None
        self.fetched = shown = _shown_results.get()
        if shown is not None:
            self.results_key = remember_results(shown)
            return iter(shown)
        try:
            # A visitor who is not logged in never runs a query with the TOM's credentials (TOM Toolkit's view
            # requires a login today; this holds whatever view calls it).
            refuse_anonymous(f"a {self.name} query")
            alerts = self.request_alerts(self._clean_parameters(self._revalidated(parameters)))
        except PittGoogleError as error:
            report_failure(logger, self.name, error)
            raise BrokerQueryError(f"{self.name}: {error}", link=getattr(error, "link", None)) from error
        if not alerts:
            # On the results page (get_broker_context_data) and, for runbrokerquery, in the log.
            self.nothing_matched = self.route.nothing_matched(parameters)
            logger.info("%s: %s", self.name, self.nothing_matched)
        else:
            self.results_key = remember_results(alerts)
        self.fetched = alerts
        return iter(alerts)

    def get_broker_context_data(self, *args: Any, **kwargs: Any) -> dict:
        return {"nothing_matched": getattr(self, "nothing_matched", None),
                "notice": getattr(self, "notice", None),
                "subscription_filter": getattr(self, "subscription_filter", ""),
                "results_key": getattr(self, "results_key", None),
                "score_label": self._score_label(getattr(self, "fetched", None) or [])}

    @staticmethod
    def _score_label(alerts: list) -> str | None:
        """The score column's heading when every alert's score is the same thing (else each cell says)."""
        names = {_score(lighten_alert(alert))[1] for alert in alerts[:RESULTS_SHOWN]}
        return names.pop() if len(names) == 1 else None

    @staticmethod
    def query_user() -> Any:
        """The TOM user the query runs for (the request's, through the middleware, or the command's), or None."""
        from tom_pittgoogle.core.credentials import current_actor

        actor = current_actor()
        return actor.user if actor is not None else None

    def request_alerts(self, parameters: dict) -> list[dict]:
        """The alerts of the query, by the broker's route (a subclass may run its own)."""
        report = RunReport()
        alerts = self.route.query(parameters, self._own_filter(parameters), user=self.query_user(), report=report)
        self.notice, self.subscription_filter = report.notice, report.subscription_filter
        return alerts

    def _own_filter(self, parameters: Mapping[str, Any]) -> Any:
        """A subclass's own :meth:`user_filter` (the original's hook), bound to the query; None: the form's filter,
        which the route builds once per query."""
        if type(self).user_filter is PittGoogleBroker.user_filter:
            return None
        return lambda alert: self.user_filter(alert, parameters)

    def _revalidated(self, parameters: Any) -> dict:
        """The saved query's parameters through the broker's form again (an old query, an edit in the admin)."""
        query_name = parameters.get("query_name") if isinstance(parameters, Mapping) else None
        return revalidate_parameters(self.form, parameters, query_name=query_name or self.name, broker=self.name)

    def _clean_parameters(self, parameters: Mapping[str, Any]) -> dict:
        return dict(parameters)

    @staticmethod
    def user_filter(alert_dict: Mapping, parameters: Mapping[str, Any]) -> Mapping | None:
        """Apply the form's filters (classtar for ZTF, reliability for LSST): the alert if it passes, else None."""
        return AlertFilter.from_parameters(parameters)(alert_dict)

    def to_generic_alert(self, alert: Mapping[str, Any]) -> PittGoogleAlert:
        """Map the Pitt-Google alert to a TOM ``GenericAlert`` whose Target carries extras and aliases."""
        return alert_to_generic_alert(alert)

    def process_reduced_data(self, target, alert: Mapping[str, Any] | None = None) -> None:
        """Store the alert's light curve on ``target`` as photometry the TOM's plot shows (idempotent).

        TOM Toolkit's Alerts page calls this after saving the Target; the Target's save has already stored the
        same points (see :meth:`PittGoogleAlert.to_target`), so this adds nothing new there.
        """
        if alert:
            targets.save_photometry(target, alert)


@with_attribute_fields
@with_selection_fields
class StreamFilterForm(GoogleAccountFormMixin, GenericQueryForm):
    """Fields both stream forms share: the survey, the subscription and the survey's filter."""

    survey = survey_field()
    subscription_name = subscription_field()
    classtar_threshold = classtar_threshold_field()
    classtar_gt_lt = classtar_gt_lt_field()
    reliability_threshold = reliability_threshold_field()

    #: The route whose check the form runs.
    query_route: Route = PUBSUB

    def clean(self):
        return self.query_route.clean(self, super().clean())
