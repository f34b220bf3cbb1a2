"""What the three TOM Toolkit brokers share: the alert mapping, error reporting and common form fields.

This module and the ``broker_*`` modules are the only ones that know TOM Toolkit's classes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from astropy.time import Time
from django.core.management.base import CommandError
from django.db.models.signals import post_save
from django.dispatch import receiver
from tom_alerts.alerts import GenericAlert, GenericBroker, GenericQueryForm

from tom_pittgoogle import conf
from tom_pittgoogle.adapters.attribute_fields import clean_attribute_filters, with_attribute_fields
from tom_pittgoogle.adapters.query_fields import (  # noqa: F401  (survey_field, subscription_and_survey: the brokers' names for them)
    PULL,
    GoogleAccountFormMixin,
    UserFacingError,
    classtar_gt_lt_field,
    classtar_threshold_field,
    clean_stream_filter,
    nothing_matched,
    reliability_threshold_field,
    report_failure,
    revalidate_parameters,
    subscription_and_survey,
    subscription_field,
    survey_field,
    validate_subscription_name,
    with_selection_fields,
)
from tom_pittgoogle.core import targets
from tom_pittgoogle.core.alerts import lighten_alert
from tom_pittgoogle.core.credentials import refuse_anonymous
from tom_pittgoogle.core.filters import AlertFilter
from tom_pittgoogle.exceptions import PittGoogleError

logger = logging.getLogger(__name__)


class BrokerQueryError(UserFacingError, requests.HTTPError, CommandError):
    """A query that failed for a reason the user can act on, reported where TOM Toolkit reports things.

    ``RunQueryView`` shows an ``HTTPError``'s message on the results page instead of a server error, and
    ``runbrokerquery`` (a management command) prints a ``CommandError``'s message and exits 1 instead of a
    traceback; one exception does both. The page gets the message as HTML (escaped, its URL a link), the
    command line as plain text (:class:`~tom_pittgoogle.adapters.query_fields.UserFacingError`).
    """

    returncode = 1


#: Julian Dates a datetime can hold: 0001-01-01 to 9999-12-31.
_JD_RANGE = (1721425.5, 5373484.5)


def jd_to_datetime(jd: float | None) -> datetime | None:
    """A Julian Date as an aware UTC datetime; None for no date, or one no datetime can hold (1e308, NaN)."""
    try:
        jd = float(jd)
    except (TypeError, ValueError, OverflowError):
        return None
    if not _JD_RANGE[0] <= jd < _JD_RANGE[1]:  # False for NaN too
        return None
    try:
        return Time(jd, format="jd", scale="utc").to_datetime(timezone=UTC)
    except (ValueError, OverflowError):
        return None


@dataclass
class PittGoogleAlert(GenericAlert):
    """TOM Toolkit's ``GenericAlert`` with what a Target made from it carries: extras, aliases, light curve."""

    survey: str = "ztf"
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


#: The score column of the alerts table, per survey.
_SCORE_FIELD = {"ztf": "classtar", "lsst": "reliability"}


def _score(alert: Mapping[str, Any]) -> float | None:
    """The survey's score column (classtar, reliability) or, on a stream without it (the lite and classifier
    topics), the first classifier's probability or score."""
    score = alert.get(_SCORE_FIELD.get(alert["survey"], "classtar"))
    if score is None:
        for summary in (alert.get("classifiers") or {}).values():
            score = summary.get("probability") if summary.get("probability") is not None else summary.get("score")
            if score is not None:
                break
    return score


def alert_to_generic_alert(alert: Mapping[str, Any]) -> PittGoogleAlert:
    """Map an alert (lightened, or a full survey record) to TOM Toolkit's ``GenericAlert``.

    A pure function of the alert: TOM Toolkit calls ``to_generic_alert`` on a new broker instance when it
    creates a Target from a cached alert. The name is the Target's name (:func:`targets.target_name`).
    """
    alert = lighten_alert(alert)
    source_id = alert["source_id"]
    return PittGoogleAlert(
        timestamp=jd_to_datetime(alert.get("jd")),
        url=conf.object_url(alert["survey"], alert["object_id"]),
        id=int(source_id) if str(source_id).isdigit() else source_id,
        name=targets.target_name(alert),
        ra=alert.get("ra"),
        dec=alert.get("dec"),
        mag=alert.get("mag"),
        score=_score(alert),
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

    #: What the query does (query_fields.SEARCH or PULL): says what an empty result means.
    query_kind = PULL
    #: The results page: TOM Toolkit's, saying what was searched when nothing matched.
    template_name = "tom_pittgoogle/query_result.html"

    def fetch_alerts(self, parameters: dict) -> Iterator[dict]:
        """Fetch the alerts for ``parameters``; a failure is reported to the user, not raised as a crash.

        The whole fetch happens here, not lazily, so that TOM Toolkit sees any failure where it handles it.
        """
        self.nothing_matched = None
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
            self.nothing_matched = nothing_matched(parameters, self.query_kind)
            logger.info("%s: %s", self.name, self.nothing_matched)
        return iter(alerts)

    def get_broker_context_data(self, *args: Any, **kwargs: Any) -> dict:
        return {"nothing_matched": getattr(self, "nothing_matched", None),
                "subscription_filter": getattr(self, "subscription_filter", "")}

    def request_alerts(self, parameters: dict) -> list[dict]:
        raise NotImplementedError

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

    def clean(self):
        return clean_attribute_filters(self, clean_stream_filter(self, super().clean()))
