"""The query fields and their validation, shared by the brokers' forms and the DataService's form.

Plain Django forms only: a TOM without ``tom_alerts`` imports this (through the DataService) and must not import
``tom_alerts`` (its models would need the app installed).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import escape, format_html

from tom_pittgoogle import conf
from tom_pittgoogle.core.alerts import SURVEY_CHOICES
from tom_pittgoogle.core.alerts.validate import is_decimal_id
from tom_pittgoogle.core.filters import CLASSTAR_COMPARISONS, CONE_KEYS, LESS_THAN, AlertFilter, utc_datetime
from tom_pittgoogle.core.pubsub import validate_resource_id
from tom_pittgoogle.exceptions import PittGoogleError
from tom_pittgoogle.routes.stored_alerts import DEFAULT_SORT, SORTS


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
    # Both surveys' ids are 64-bit integers (BigQuery INT64): a larger number cannot be a source id.
    return forms.IntegerField(required=False, min_value=0, max_value=2**63 - 1, label="Source id (candid)",
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
    return clean_selection(form, cleaned_data)


def clean_search(form: forms.Form, cleaned_data: dict) -> dict:
    """A BigQuery search: by object id or by source id, not both; an LSST object id is a number."""
    cleaned_data["survey"] = cleaned_data.get("survey") or "ztf"
    if cleaned_data.get("objectId") and cleaned_data.get("candid") is not None:
        raise forms.ValidationError("Search by objectId or by candid, not both.")
    object_id = (cleaned_data.get("objectId") or "").strip()
    if cleaned_data.get("survey") == "lsst" and object_id and not is_decimal_id(object_id):
        form.add_error("objectId", "A Rubin/LSST object id (diaObjectId or ssObjectId) is a number.")
    if cleaned_data.get("predicted_class"):
        form.add_error("predicted_class", "Pitt-Google's alerts tables hold no classifier results: filter on a "
                                          "predicted class on a classifier stream.")
    return clean_selection(form, cleaned_data)


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
        return f"Nothing matched: {_tables_text(parameters, survey)} ({survey_label}) has no {what}."
    subscription, _ = subscription_and_survey(parameters)
    timeout = parameters.get("timeout")
    waited = f"; the query stops after {float(timeout):g} s without a new message" if timeout not in (None, "") else ""
    return (
        f"Nothing matched: no alert{_filter_text(parameters, survey)} came from subscription {subscription} "
        f"({survey_label}){waited}. A subscription receives only the alerts published after it was created, and "
        "each alert goes to one pull: a new subscription, or one that another query has just read, stays empty "
        "until new alerts are published. Run the query again later."
    )


def _tables_text(parameters: Mapping[str, Any], survey: str) -> str:
    """Which BigQuery tables a search read: the one named, the ones listed in settings, or every alerts table."""
    named = parameters.get("table_name") or conf.survey_table(survey)
    if named:
        return f"BigQuery table {named if '.' in named else conf.survey_dataset(survey) + '.' + named}"
    listed = conf.survey_tables(survey)
    if listed:
        return f"BigQuery tables {', '.join(listed)}"
    return f"every alerts table of BigQuery dataset {conf.survey_dataset(survey)}"


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


class InvalidQueryParametersError(PittGoogleError):
    """A stored query's parameters no longer pass its form (an old saved query, an edit in the admin)."""


def revalidate_parameters(form_class: type[forms.Form], parameters: Any, **fixed: Any) -> dict:
    """``parameters`` (a saved query's) run through ``form_class`` again before a run: the cleaned values.

    A field the parameters do not have takes the form's initial value; ``fixed`` (the query's name, the broker)
    overrides. Raises :class:`InvalidQueryParametersError` naming each field that does not pass.
    """
    if not isinstance(parameters, Mapping):
        raise InvalidQueryParametersError(
            f"The query's stored parameters are a {type(parameters).__name__}, not named values: save the query "
            "again from its form."
        )
    blank = form_class()
    data = {name: blank.get_initial_for_field(field, name) for name, field in blank.fields.items()
            if name not in parameters}
    form = form_class(data={**data, **parameters, **fixed})
    if form.is_valid():
        return {**parameters, **form.cleaned_data}
    problems = []
    for name, errors in form.errors.items():
        text = " ".join(str(error) for error in errors)
        problems.append(text if name == forms.forms.NON_FIELD_ERRORS else f"{name}: {text}")
    raise InvalidQueryParametersError(
        "The query's stored parameters do not pass its form (" + "; ".join(problems) + "). Edit the query, "
        "correct them and save it again."
    )


# -- Cone, time window, classifier and table fields (every route; see tom_pittgoogle.core.filters) --------------


class UTCDateTimeField(forms.DateTimeField):
    """A date and time read as UTC whatever the TOM's time zone, cleaned to an ISO 8601 string (a saved query's
    parameters are stored as JSON)."""

    def to_python(self, value: Any):
        with timezone.override(dt.UTC):
            value = super().to_python(value)
        return None if value is None else value.astimezone(dt.UTC)

    def clean(self, value: Any) -> str | None:
        value = super().clean(value)
        return None if value is None else value.isoformat()


def cone_fields() -> dict[str, forms.Field]:
    return {
        "cone_ra": forms.FloatField(required=False, min_value=0, max_value=360, label="Cone RA",
                                    help_text="Cone search: centre right ascension (degrees, ICRS)."),
        "cone_dec": forms.FloatField(required=False, min_value=-90, max_value=90, label="Cone Dec",
                                     help_text="Cone search: centre declination (degrees)."),
        "cone_radius_arcsec": forms.FloatField(required=False, min_value=0.001, max_value=36000,
                                               label="Cone radius (arcsec)",
                                               help_text="Cone search: radius in arcseconds (all three or none)."),
    }


def time_window_fields() -> dict[str, forms.Field]:
    return {
        "start_time": UTCDateTimeField(required=False, label="Start (UTC)",
                                       help_text="Alerts observed at or after this time (UTC, e.g. 2025-11-15 "
                                                 "03:00). A BigQuery search with a time window costs less."),
        "end_time": UTCDateTimeField(required=False, label="End (UTC)",
                                     help_text="Alerts observed before this time (UTC)."),
    }


def classifier_fields() -> dict[str, forms.Field]:
    return {
        "score_name": forms.CharField(required=False, max_length=100, label="Score name",
                                      help_text="Keep alerts whose score of this name (e.g. drb, reliability, a "
                                                "classifier's probability) is at least the minimum below."),
        "score_min": forms.FloatField(required=False, label="Score minimum"),
        "predicted_class": forms.CharField(required=False, max_length=100, label="Predicted class",
                                           help_text="Keep alerts a classifier puts in this class (any case), "
                                                     "e.g. SN Ia (classifier streams only)."),
    }


def filter_fields() -> dict[str, forms.Field]:
    """The cone, time window and classifier fields, as new instances (add them to a form's ``base_fields``)."""
    return {**cone_fields(), **time_window_fields(), **classifier_fields()}


def with_selection_fields(form_class: type[forms.Form]) -> type[forms.Form]:
    """Class decorator: add :func:`filter_fields` after the form's own fields. The form's ``clean`` must call
    :func:`clean_selection` (as :func:`clean_search` and :func:`clean_stream_filter` do)."""
    for name, field in filter_fields().items():
        form_class.base_fields[name] = form_class.declared_fields[name] = field
    return form_class


def table_name_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=128,
        validators=[RegexValidator(r"^[A-Za-z0-9_]+$", "A table of Pitt-Google's dataset, such as alerts_v4_02.")],
        help_text="One BigQuery table of the survey's dataset (e.g. alerts_v4_02, alerts_v3_3; for Rubin/LSST "
                  "alerts_v11_1). Empty: every alerts table, merged newest first.",
    )


def clean_selection(form: forms.Form, cleaned_data: dict) -> dict:
    """A cone needs all three values; a time window's start is before its end; a score needs its minimum."""
    cone = [cleaned_data.get(name) for name in CONE_KEYS]
    if any(value is not None for value in cone) and any(value is None for value in cone):
        for name, value in zip(CONE_KEYS, cone, strict=True):
            if value is None:
                form.add_error(name, "A cone needs its RA, Dec and radius.")
    start, end = cleaned_data.get("start_time"), cleaned_data.get("end_time")
    if start and end and not utc_datetime(start) < utc_datetime(end):
        form.add_error("end_time", "The end of the time window must be after its start.")
    if bool(cleaned_data.get("score_name")) != (cleaned_data.get("score_min") is not None):
        form.add_error("score_min" if cleaned_data.get("score_name") else "score_name",
                       "A score filter needs both the score's name and its minimum.")
    return cleaned_data


# --- the stored route's fields (the DataService's third route, tom_pittgoogle.routes.stored_alerts) ----------


def stored_route_fields() -> dict[str, forms.Field]:
    """The fields the stored route adds to the DataService form (the cone, time window and classifier fields are
    :func:`with_selection_fields`', shared with the other routes)."""
    return {
        "band": forms.CharField(required=False, max_length=16, help_text="Stored alerts: the band (ZTF g, r, i; "
                                "Rubin u, g, r, i, z, y); empty: any."),
        "mag_min": forms.FloatField(required=False, label="Magnitude at least",
                                    help_text="Stored alerts: fainter than or as faint as this."),
        "mag_max": forms.FloatField(required=False, label="Magnitude at most",
                                    help_text="Stored alerts: brighter than or as bright as this."),
        "sort": forms.ChoiceField(required=False, choices=[(key, label) for key, (label, _) in SORTS.items()],
                                  initial=DEFAULT_SORT, help_text="Stored alerts: the order of the results."),
        "page": forms.IntegerField(required=False, min_value=1, initial=1,
                                   help_text="Stored alerts: which page of Max results alerts."),
    }


def with_stored_route_fields(form_class: type[forms.Form]) -> type[forms.Form]:
    """Class decorator: add :func:`stored_route_fields` that ``form_class`` lacks, after its own fields."""
    for name, field in stored_route_fields().items():
        if name not in form_class.base_fields:
            form_class.base_fields[name] = form_class.declared_fields[name] = field
    return form_class


def clean_stored(form: forms.Form, cleaned_data: dict) -> dict:
    """The stored route's query: by object id or by source id, not both; a filter the route can read."""
    cleaned_data["survey"] = cleaned_data.get("survey") or "ztf"
    if cleaned_data.get("objectId") and cleaned_data.get("candid") is not None:
        raise forms.ValidationError("Search by object id or by source id, not both.")
    cleaned_data = clean_selection(form, cleaned_data)
    if not form.errors:
        try:
            AlertFilter.from_parameters(cleaned_data)
        except (TypeError, ValueError) as error:
            raise forms.ValidationError(f"Stored alerts: {error}.") from None
    return cleaned_data
