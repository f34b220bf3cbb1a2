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
from django.utils.html import format_html

from tom_pittgoogle import conf
from tom_pittgoogle.core.alerts import SURVEY_CHOICES
from tom_pittgoogle.core.alerts.validate import INT64_MAX, SURVEY_BANDS, ZTF_OBJECT_ID
from tom_pittgoogle.core.filters import (
    CLASSTAR_COMPARISONS,
    CONE_KEYS,
    EARLIEST_TIME,
    LATEST_TIME,
    LESS_THAN,
    TIME_RANGE_TEXT,
    AlertFilter,
    utc_datetime,
)
from tom_pittgoogle.core.pubsub import validate_resource_id
from tom_pittgoogle.exceptions import PittGoogleError
from tom_pittgoogle.routes.stored_alerts import DEFAULT_SORT, MAX_PAGE, SORTS

logger = logging.getLogger(__name__)


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


def clean_survey_scores(form: forms.Form, cleaned_data: dict) -> str:
    """The survey (ZTF when empty); a score threshold of the other survey's is a field error (classtar is ZTF's,
    reliability Rubin/LSST's): it would keep nothing, silently."""
    survey = cleaned_data["survey"] = cleaned_data.get("survey") or "ztf"
    if survey != "ztf" and cleaned_data.get("classtar_threshold") is not None:
        form.add_error("classtar_threshold", "classtar is a ZTF field: for Rubin/LSST filter on reliability.")
    if survey != "lsst" and cleaned_data.get("reliability_threshold") is not None:
        form.add_error("reliability_threshold", "reliability is a Rubin/LSST field: for ZTF filter on classtar.")
    return survey


def clean_object_id(form: forms.Form, cleaned_data: dict) -> None:
    """An object id, when given, is one of the survey's: ZTF's ``ZTF`` + two digits + seven letters, Rubin/LSST's
    a number (diaObjectId or ssObjectId); ASCII only. Anything else could match nothing: a field error says so."""
    object_id = (cleaned_data.get("objectId") or "").strip()
    if not object_id:
        return
    if cleaned_data.get("survey") == "lsst":
        if not (object_id.isascii() and object_id.isdigit() and int(object_id) <= INT64_MAX):
            form.add_error("objectId", "A Rubin/LSST object id (diaObjectId or ssObjectId) is a number.")
    elif not (object_id.isascii() and ZTF_OBJECT_ID.fullmatch(object_id)):
        form.add_error("objectId", f"{object_id!r} is not a ZTF object id: ZTF, two digits and seven lower-case "
                                   "letters, e.g. ZTF18abfkwnk.")
    else:
        cleaned_data["objectId"] = object_id


def clean_stream_filter(form: forms.Form, cleaned_data: dict) -> dict:
    """The survey (ZTF when empty), its filter only (classtar is ZTF's, reliability LSST's), the subscription
    (the survey's default when empty)."""
    survey = clean_survey_scores(form, cleaned_data)
    if not cleaned_data.get("subscription_name"):
        cleaned_data["subscription_name"] = conf.survey_default_subscription(survey)
    return clean_selection(form, cleaned_data)


def clean_search(form: forms.Form, cleaned_data: dict) -> dict:
    """A BigQuery search: by object id or by source id, not both; an LSST object id is a number."""
    cleaned_data["survey"] = cleaned_data.get("survey") or "ztf"
    if cleaned_data.get("objectId") and cleaned_data.get("candid") is not None:
        raise forms.ValidationError("Search by objectId or by candid, not both.")
    clean_object_id(form, cleaned_data)
    if cleaned_data.get("predicted_class"):
        form.add_error("predicted_class", "Pitt-Google's alerts tables hold no classifier results: filter on a "
                                          "predicted class on a classifier stream.")
    return clean_selection(form, cleaned_data)


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
    parameters are stored as JSON). Text or a datetime only, between :data:`EARLIEST_TIME` and
    :data:`LATEST_TIME`."""

    def to_python(self, value: Any):
        if value not in self.empty_values and not isinstance(value, str | dt.date):
            # A saved query edited in the admin: 5, True, [1] are no time.
            raise forms.ValidationError(
                f"A date and time is text such as 2025-11-15 03:00 (UTC), not {type(value).__name__} {value!r}."
            )
        try:
            with timezone.override(dt.UTC):
                value = super().to_python(value)
            value = None if value is None else value.astimezone(dt.UTC)
        except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
            value = EARLIEST_TIME - dt.timedelta(days=1)
        if value is not None and not EARLIEST_TIME <= value < LATEST_TIME:
            raise forms.ValidationError(f"Give a time {TIME_RANGE_TEXT}.")
        return value

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
        "mag_min": forms.FloatField(required=False, label="Brightest magnitude (smallest number)",
                                    help_text="Stored alerts: keep alerts whose magnitude is this number or "
                                              "larger (this bright or fainter)."),
        "mag_max": forms.FloatField(required=False, label="Faintest magnitude (largest number)",
                                    help_text="Stored alerts: keep alerts whose magnitude is this number or "
                                              "smaller (this faint or brighter)."),
        "sort": forms.ChoiceField(required=False, choices=[(key, label) for key, (label, _) in SORTS.items()],
                                  initial=DEFAULT_SORT, help_text="Stored alerts: the order of the results."),
        "page": forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE, initial=1,
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
    survey = clean_survey_scores(form, cleaned_data)
    if cleaned_data.get("objectId") and cleaned_data.get("candid") is not None:
        raise forms.ValidationError("Search by object id or by source id, not both.")
    clean_object_id(form, cleaned_data)
    band = (cleaned_data.get("band") or "").strip()
    if band and band not in SURVEY_BANDS.get(survey, ()):
        form.add_error("band", f"{band!r} is not a band of {dict(SURVEY_CHOICES).get(survey, survey)}: "
                               f"{', '.join(SURVEY_BANDS.get(survey, ()))}.")
    mag_min, mag_max = cleaned_data.get("mag_min"), cleaned_data.get("mag_max")
    if mag_min is not None and mag_max is not None and mag_min > mag_max:
        form.add_error("mag_max", f"The magnitude range is empty: the faintest magnitude ({mag_max:g}) is a smaller "
                                  f"number than the brightest ({mag_min:g}). A fainter alert has a larger magnitude.")
    cleaned_data = clean_selection(form, cleaned_data)
    if not form.errors:
        try:
            AlertFilter.from_parameters(cleaned_data)
        except (TypeError, ValueError) as error:
            raise forms.ValidationError(f"Stored alerts: {error}.") from None
    return cleaned_data
