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
from django import forms
from django.core.management.base import CommandError
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape, format_html
from tom_alerts.alerts import GenericAlert, GenericBroker, GenericQueryForm

from . import conf, targets
from .alerts import SURVEY_CHOICES, lighten_alert
from .exceptions import PittGoogleError
from .filters import CLASSTAR_COMPARISONS, LESS_THAN, AlertFilter
from .pubsub import validate_resource_id

logger = logging.getLogger(__name__)


class BrokerQueryError(requests.HTTPError, CommandError):
    """A query that failed for a reason the user can act on, reported where TOM Toolkit reports things.

    ``RunQueryView`` shows an ``HTTPError``'s message on the results page instead of a server error, and
    ``runbrokerquery`` (a management command) prints a ``CommandError``'s message and exits 1 instead of a
    traceback; one exception does both. The message is escaped: the page renders it as HTML.
    """

    returncode = 1

    def __init__(self, message: str, link: str | None = None) -> None:
        text = str(escape(message))
        if link:  # the URL the message quotes becomes a link (the page of a web request only)
            text = text.replace(str(escape(link)), str(format_html('<a href="{}">{}</a>', link, link)))
        super().__init__(text)


def jd_to_datetime(jd: float | None) -> datetime | None:
    """A Julian Date as an aware UTC datetime."""
    if jd is None:
        return None
    return Time(jd, format="jd", scale="utc").to_datetime(timezone=UTC)


@dataclass
class PittGoogleAlert(GenericAlert):
    """TOM Toolkit's ``GenericAlert`` with what a Target made from it carries: extras and aliases."""

    survey: str = "ztf"
    extras: dict = field(default_factory=dict)
    aliases: list = field(default_factory=list)

    def to_target(self):
        """``(Target, extras, aliases)``, as TOM Toolkit's views and ``runbrokerquery`` expect."""
        target, _, _ = super().to_target()
        return target, dict(self.extras), list(self.aliases)


#: The score column of the alerts table, per survey.
_SCORE_FIELD = {"ztf": "classtar", "lsst": "reliability"}


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
        score=alert.get(_SCORE_FIELD.get(alert["survey"], "classtar")),
        survey=alert["survey"],
        extras=targets.target_extras(alert),
        aliases=targets.target_aliases(alert),
    )


class PittGoogleBroker(GenericBroker):
    """Base of the three Pitt-Google brokers: subclasses implement :meth:`request_alerts`."""

    score_description = (
        "ZTF: star/galaxy score (classtar), near 1 for a star, near 0 for a galaxy. Rubin/LSST: reliability, "
        "the probability that the source is real."
    )

    def fetch_alerts(self, parameters: dict) -> Iterator[dict]:
        """Fetch the alerts for ``parameters``; a failure is reported to the user, not raised as a crash.

        The whole fetch happens here, not lazily, so that TOM Toolkit sees any failure where it handles it.
        """
        try:
            alerts = self.request_alerts(self._clean_parameters(parameters))
        except PittGoogleError as error:
            logger.warning("%s query failed: %s", self.name, error)
            raise BrokerQueryError(f"{self.name}: {error}", link=getattr(error, "link", None)) from error
        return iter(alerts)

    def request_alerts(self, parameters: dict) -> list[dict]:
        raise NotImplementedError

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
        """Store the alert's light curve on ``target`` as photometry the TOM's plot shows (idempotent)."""
        if alert:
            targets.save_photometry(target, alert)


def survey_field() -> forms.ChoiceField:
    # Not required: a query posted or saved without it (as before Rubin/LSST) reads ZTF.
    return forms.ChoiceField(
        required=False,
        choices=SURVEY_CHOICES,
        initial=lambda: conf.get("PITTGOOGLE_DEFAULT_SURVEY"),
        help_text="Whose alerts: ZTF's (Pitt-Google project ardent-cycling-243415) or Rubin/LSST's "
        "(pitt-alert-broker).",
    )


def validate_subscription_name(value: str) -> None:
    try:
        validate_resource_id(value)
    except PittGoogleError as error:
        raise forms.ValidationError(str(error)) from None


class GoogleAccountFormMixin:
    """Says on the form whose Google account a query uses, with a link to connect one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            url = reverse("tom_pittgoogle:oauth-connection")
        except NoReverseMatch:  # the TOM did not include tom_pittgoogle.urls: no sign-in page to link to
            return
        self.fields["query_name"].help_text = format_html(
            'Queries you run here use your own Google account if you connect one: <a href="{}">Connect Google '
            "account</a> (otherwise the TOM's credentials).",
            url,
        )


class StreamFilterForm(GoogleAccountFormMixin, GenericQueryForm):
    """Fields both stream forms share: the survey, the subscription and the survey's filter."""

    survey = survey_field()
    subscription_name = forms.CharField(
        required=False,
        validators=[validate_subscription_name],
        help_text=(
            "Created in your Google Cloud project, attached to the Pitt-Google topic of the same name (in the "
            "survey's Pitt-Google project), if it does not exist yet. Empty: ztf-loop for ZTF (a heartbeat stream "
            "of about one alert a second), lsst-alerts for Rubin/LSST; also lsst-alerts-json and others."
        ),
    )
    classtar_threshold = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        help_text="ZTF only: star/galaxy score threshold (empty: no filter). Alerts without a score never pass.",
    )
    reliability_threshold = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        help_text="Rubin/LSST only: keep alerts whose diaSource reliability is at least this (empty: no filter).",
    )
    classtar_gt_lt = forms.ChoiceField(
        required=True,
        choices=CLASSTAR_COMPARISONS,
        initial=LESS_THAN,
        widget=forms.RadioSelect,
        label="",
    )

    def clean(self):
        cleaned_data = super().clean()
        survey = cleaned_data["survey"] = cleaned_data.get("survey") or "ztf"
        if survey != "ztf" and cleaned_data.get("classtar_threshold") is not None:
            self.add_error("classtar_threshold", "classtar is a ZTF field: for Rubin/LSST filter on reliability.")
        if survey != "lsst" and cleaned_data.get("reliability_threshold") is not None:
            self.add_error("reliability_threshold", "reliability is a Rubin/LSST field: for ZTF filter on classtar.")
        if not cleaned_data.get("subscription_name"):
            cleaned_data["subscription_name"] = conf.survey_default_subscription(survey)
        return cleaned_data


def subscription_and_survey(parameters: Mapping[str, Any]) -> tuple[str, str]:
    """The subscription a stream query reads and its survey (saved queries from before the survey field: ZTF)."""
    survey = parameters.get("survey") or "ztf"
    return parameters.get("subscription_name") or conf.survey_default_subscription(survey), survey
