"""What the three TOM Toolkit brokers share: the alert mapping, error reporting and common form fields.

This module and the ``broker_*`` modules are the only ones that know TOM Toolkit's classes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from astropy.time import Time
from django import forms
from django.core.management.base import CommandError
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape, format_html
from tom_alerts.alerts import GenericAlert, GenericBroker, GenericQueryForm

from . import conf
from .alerts import lighten_alert
from .exceptions import PittGoogleError
from .filters import CLASSTAR_COMPARISONS, LESS_THAN, ClasstarFilter
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


def alert_to_generic_alert(alert: Mapping[str, Any]) -> GenericAlert:
    """Map an alert (lightened, or a full survey record) to TOM Toolkit's ``GenericAlert``.

    A pure function of the alert: TOM Toolkit calls ``to_generic_alert`` on a new broker instance when it
    creates a Target from a cached alert.
    """
    alert = lighten_alert(alert)
    source_id = alert["source_id"]
    return GenericAlert(
        timestamp=jd_to_datetime(alert.get("jd")),
        url=conf.object_url(alert["survey"], alert["object_id"]),
        id=int(source_id) if str(source_id).isdigit() else source_id,
        name=alert["object_id"],
        ra=alert.get("ra"),
        dec=alert.get("dec"),
        mag=alert.get("mag"),
        score=alert.get("classtar"),
    )


class PittGoogleBroker(GenericBroker):
    """Base of the three Pitt-Google brokers: subclasses implement :meth:`request_alerts`."""

    score_description = "Star/galaxy score (ZTF classtar): near 1 for a star, near 0 for a galaxy."

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
        """Apply the form's classtar filter: the alert if it passes, else None."""
        return ClasstarFilter.from_parameters(parameters)(alert_dict)

    def to_generic_alert(self, alert: Mapping[str, Any]) -> GenericAlert:
        """Map the Pitt-Google alert to a TOM ``GenericAlert``."""
        return alert_to_generic_alert(alert)


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
    """Fields both stream forms share: the subscription and the classtar filter."""

    subscription_name = forms.CharField(
        required=True,
        initial="ztf-loop",
        validators=[validate_subscription_name],
        help_text=(
            "Created in your Google Cloud project, attached to the Pitt-Google topic of the same name, if it "
            "does not exist yet. ztf-loop is a heartbeat stream of about one alert a second."
        ),
    )
    classtar_threshold = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        help_text="Star/galaxy score threshold (empty: no filter). Alerts without a score never pass.",
    )
    classtar_gt_lt = forms.ChoiceField(
        required=True,
        choices=CLASSTAR_COMPARISONS,
        initial=LESS_THAN,
        widget=forms.RadioSelect,
        label="",
    )
