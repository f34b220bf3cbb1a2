"""The query fields and their validation, shared by the brokers' forms and the DataService's form.

Plain Django forms only: a TOM without ``tom_alerts`` imports this (through the DataService) and must not import
``tom_alerts`` (its models would need the app installed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django import forms
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape, format_html

from . import conf
from .alerts import SURVEY_CHOICES
from .exceptions import PittGoogleError
from .filters import CLASSTAR_COMPARISONS, LESS_THAN
from .pubsub import validate_resource_id


class GoogleAccountFormMixin:
    """Says on the form whose Google account a query uses, with a link to the page that connects one.

    The sentence is added to the help text of ``google_account_field`` (a field the form shows).
    """

    google_account_field = "query_name"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            url = reverse("tom_pittgoogle:oauth-connection")
        except NoReverseMatch:  # the TOM did not include tom_pittgoogle.urls: no sign-in page to link to
            return
        field = self.fields[self.google_account_field]
        sentence = format_html(
            'Queries you run here use your own Google account if you connect one: <a href="{}">Connect Google '
            "account</a> (otherwise the TOM's credentials).",
            url,
        )
        field.help_text = format_html("{} {}", field.help_text, sentence) if field.help_text else sentence


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


def subscription_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        validators=[validate_subscription_name],
        help_text=(
            "Created in your Google Cloud project, attached to the Pitt-Google topic of the same name (in the "
            "survey's Pitt-Google project), if it does not exist yet. Empty: ztf-loop for ZTF (a heartbeat stream "
            "of about one alert a second), lsst-alerts for Rubin/LSST; also lsst-alerts-json and others."
        ),
    )


def _score_threshold_field(help_text: str) -> forms.FloatField:
    """A 0-1 score threshold; empty means no filter."""
    return forms.FloatField(required=False, min_value=0, max_value=1, help_text=help_text)


def classtar_threshold_field() -> forms.FloatField:
    return _score_threshold_field(
        "ZTF only: star/galaxy score threshold (empty: no filter). Alerts without a score never pass."
    )


def reliability_threshold_field() -> forms.FloatField:
    return _score_threshold_field(
        "Rubin/LSST only: keep alerts whose diaSource reliability is at least this (empty: no filter)."
    )


def rest_pull_timeout_field(help_text: str = "Stop after this many seconds without a new message") -> forms.FloatField:
    """How long a Pub/Sub REST pull waits for messages (StreamRest and the DataService's Pub/Sub route)."""
    return forms.FloatField(
        required=False,
        initial=10,
        min_value=0,
        max_value=300,
        help_text=f"{help_text} (empty: the TOM's default).",
    )


def classtar_gt_lt_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        required=True,
        choices=CLASSTAR_COMPARISONS,
        initial=LESS_THAN,
        widget=forms.RadioSelect,
        label="Classtar comparison",
        help_text="ZTF only: keep alerts whose classtar is less than, or greater than or equal to, the classtar "
        "threshold.",
    )


def object_id_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=64,
        label="Object id",
        help_text="ZTF objectId (e.g. ZTF18abfkwnk), or Rubin/LSST diaObjectId or ssObjectId (a number)",
    )


def candid_field() -> forms.IntegerField:
    return forms.IntegerField(required=False, min_value=0, label="Source id (candid)",
                              help_text="ZTF candid, or Rubin/LSST diaSourceId")


def clean_stream_filter(form: forms.Form, cleaned_data: dict) -> dict:
    """The survey (ZTF when empty), its filter only (classtar is ZTF's, reliability LSST's), the subscription
    (the survey's default when empty)."""
    survey = cleaned_data["survey"] = cleaned_data.get("survey") or "ztf"
    if survey != "ztf" and cleaned_data.get("classtar_threshold") is not None:
        form.add_error("classtar_threshold", "classtar is a ZTF field: for Rubin/LSST filter on reliability.")
    if survey != "lsst" and cleaned_data.get("reliability_threshold") is not None:
        form.add_error("reliability_threshold", "reliability is a Rubin/LSST field: for ZTF filter on classtar.")
    if not cleaned_data.get("subscription_name"):
        cleaned_data["subscription_name"] = conf.survey_default_subscription(survey)
    return cleaned_data


def clean_search(form: forms.Form, cleaned_data: dict) -> dict:
    """A BigQuery search: by object id or by source id, not both; an LSST object id is a number."""
    cleaned_data["survey"] = cleaned_data.get("survey") or "ztf"
    if cleaned_data.get("objectId") and cleaned_data.get("candid") is not None:
        raise forms.ValidationError("Search by objectId or by candid, not both.")
    object_id = (cleaned_data.get("objectId") or "").strip()
    if cleaned_data.get("survey") == "lsst" and object_id and not object_id.isdigit():
        form.add_error("objectId", "A Rubin/LSST object id (diaObjectId or ssObjectId) is a number.")
    return cleaned_data


def subscription_and_survey(parameters: Mapping[str, Any]) -> tuple[str, str]:
    """The subscription a stream query reads and its survey (saved queries from before the survey field: ZTF)."""
    survey = parameters.get("survey") or "ztf"
    return parameters.get("subscription_name") or conf.survey_default_subscription(survey), survey


#: The two kinds of query, for :func:`nothing_matched`.
SEARCH, PULL = "search", "pull"


def nothing_matched(parameters: Mapping[str, Any], kind: str) -> str:
    """What an empty result means: what was searched, and why a pull may come back empty."""
    survey = parameters.get("survey") or "ztf"
    survey_label = dict(SURVEY_CHOICES).get(survey, survey)
    if kind == SEARCH:
        object_id = (parameters.get("objectId") or "").strip()
        candid = parameters.get("candid")
        if object_id:
            what = f"alerts of object {object_id}"
        elif candid not in (None, ""):
            what = f"the alert with source id (candid) {candid}"
        else:
            what = "the newest alerts"
        return f"Nothing matched: BigQuery table {conf.survey_table(survey)} ({survey_label}) has no {what}."
    subscription, _ = subscription_and_survey(parameters)
    timeout = parameters.get("timeout")
    waited = f"; the query stops after {float(timeout):g} s without a new message" if timeout not in (None, "") else ""
    return (
        f"Nothing matched: no alert{_filter_text(parameters, survey)} came from subscription {subscription} "
        f"({survey_label}){waited}. A subscription receives only the alerts published after it was created, and "
        "each alert goes to one pull: a new subscription, or one that another query has just read, stays empty "
        "until new alerts are published. Run the query again later."
    )


def _filter_text(parameters: Mapping[str, Any], survey: str) -> str:
    if survey == "ztf" and parameters.get("classtar_threshold") not in (None, ""):
        comparison = dict(CLASSTAR_COMPARISONS).get(parameters.get("classtar_gt_lt") or LESS_THAN)
        return f" with classtar {comparison} {parameters['classtar_threshold']}"
    if survey == "lsst" and parameters.get("reliability_threshold") not in (None, ""):
        return f" with reliability of at least {parameters['reliability_threshold']}"
    return ""


class UserFacingError(Exception):
    """Base of an error that TOM Toolkit shows: plain text on the command line, HTML on a page.

    TOM Toolkit's results pages render the text of the error as HTML, and its commands print the same text;
    the text is made when it is shown (``str()``), so each place gets its own form: on a page the message is
    escaped and the URL it quotes (``link``) becomes a link.
    """

    def __init__(self, message: str, link: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.link = link

    def __str__(self) -> str:
        return error_html(self.message, self.link) if conf.in_web_request() else self.message


def report_failure(log: logging.Logger, source: str, error: Exception) -> None:
    """Log a failed query for the server's log; a command shows the error once, itself, so it is not logged there."""
    log.log(logging.WARNING if conf.in_web_request() else logging.DEBUG, "%s query failed: %s", source, error)


def error_html(message: str, link: str | None = None) -> str:
    """A failure's message for a TOM page that renders it as HTML: escaped, the URL it quotes made a link."""
    text = str(escape(message))
    if link:
        text = text.replace(str(escape(link)), str(format_html('<a href="{}">{}</a>', link, link)))
    return text
