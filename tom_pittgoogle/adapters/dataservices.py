"""Pitt-Google as a TOM Toolkit 3 DataService (``tom_dataservices``), for TOMs with or without ``tom_alerts``.

A thin adapter: the query runs through the same Consumers as the brokers (BigQuery for history, a Pub/Sub REST
pull for what is new), with the same form fields and filters (:mod:`tom_pittgoogle.adapters.query_fields`), and Targets,
aliases, extras and light curves come from :mod:`tom_pittgoogle.core.targets`. Registered by
``TomPittGoogleConfig.data_services()``; configured (optionally) by ``settings.DATA_SERVICES["Pitt-Google"]``.

TOM Toolkit's flow: the query form's cleaned data goes to :meth:`PittGoogleDataService.build_query_parameters`,
then :meth:`~PittGoogleDataService.query_targets` returns one row per alert (cached by the view); *Create Targets*
calls ``to_target`` (our ``create_target_from_query``, ``create_target_extras_from_query`` and the row's
``aliases``) and ``to_reduced_datums`` (the row's alert, stored as ``PhotometryReducedDatum``). A BigQuery search's
alerts are attached to the followed Targets they belong to (the BigQuery route of
:mod:`~tom_pittgoogle.adapters.route_table`, which the DatabasePython broker takes too).

The Target page's *Update Reduced Data* calls ``query_reduced_data(target)`` then ``to_reduced_datums(target,
data)``; that pair is the one way to fetch a Target's history (the Target page's Pitt-Google button takes it
too). It works for any Target: :meth:`~PittGoogleDataService.build_query_parameters_from_target` gives a cone of
``PITTGOOGLE_MATCH_RADIUS_ARCSEC`` around it and its names that are survey object ids, and
:meth:`~PittGoogleDataService.query_photometry` runs :func:`tom_pittgoogle.routes.target_history.fetch_history`:
both surveys' BigQuery tables under one cost guard, and the alerts this TOM stored, attached to the Target as they
are found. ``to_reduced_datums`` then tells the user what each survey gave and what was new (:func:`update_message`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from django import forms
from tom_dataservices.dataservices import DataService, NotConfiguredError, QueryServiceError
from tom_dataservices.forms import BaseQueryForm

from tom_pittgoogle import conf
from tom_pittgoogle.adapters import route_table as routes
from tom_pittgoogle.adapters.attribute_fields import with_attribute_fields
from tom_pittgoogle.adapters.query_fields import (
    GoogleAccountFormMixin,
    candid_field,
    classtar_gt_lt_field,
    classtar_threshold_field,
    object_id_field,
    reliability_threshold_field,
    rest_pull_timeout_field,
    revalidate_parameters,
    subscription_field,
    survey_field,
    table_name_field,
    with_selection_fields,
    with_stored_route_fields,
)
from tom_pittgoogle.adapters.query_messages import UserFacingError, error_html, report_failure
from tom_pittgoogle.adapters.query_subscriptions import subscription_and_survey
from tom_pittgoogle.core import targets
from tom_pittgoogle.core.acting import current_actor, refuse_anonymous
from tom_pittgoogle.core.alerts import lighten_alert
from tom_pittgoogle.core.attach import attach_found
from tom_pittgoogle.core.words import count
from tom_pittgoogle.exceptions import PittGoogleError
from tom_pittgoogle.routes import target_history

logger = logging.getLogger(__name__)

#: TOM Toolkit's results page shows at most 100 rows.
MAX_RESULTS = 100
#: Alerts read from BigQuery to update a Target's light curve (each one carries its recent history).
UPDATE_MAX_RESULTS = 100
#: The query parameter naming the user a query runs for: TOM Toolkit's view serves its cached rows again when a
#: query's parameters equal the last one's, whoever ran it; with the user in the parameters, one user never gets
#: rows fetched with another's Google account.
FOR_USER = "for_user"
#: Keys of ``settings.DATA_SERVICES["Pitt-Google"]`` (all optional): the form's initial survey and route.
CONFIGURATION_KEYS = ("survey", "route")



def _status_link() -> str:
    """The route field's help: a link to the ingesters' status page, when the TOM includes the app's pages."""
    from django.urls import NoReverseMatch, reverse
    from django.utils.html import format_html

    try:
        url = reverse("tom_pittgoogle:status")
    except NoReverseMatch:
        return ""
    return format_html('Stored alerts: is the ingester running? See <a href="{}">its status</a>.', url)


class ResultOfAnotherQueryError(NotImplementedError):
    """A cached result row fetched for another user (a ``NotImplementedError``: the error TOM Toolkit's *Create
    Targets* view shows as a message)."""


class PittGoogleQueryServiceError(UserFacingError, QueryServiceError):
    """A failed query: HTML on the results page, plain text in ``rundataquery``'s log line."""


def _configured(key: str, default: Any = None) -> Any:
    try:
        return PittGoogleDataService.get_configuration(key, default) or default
    except NotConfiguredError:  # no DATA_SERVICES entry: every key has its default
        return default


@with_attribute_fields
@with_stored_route_fields
@with_selection_fields
class PittGoogleQueryForm(GoogleAccountFormMixin, BaseQueryForm):
    """The brokers' fields in one form: survey, route, the BigQuery search and the Pub/Sub pull with its filter."""

    # The query name is shown only when the query is saved: the link goes under the survey, the first field.
    google_account_field = "survey"

    survey = survey_field()
    route = forms.ChoiceField(choices=routes.dataservice_route_choices,
                              initial=lambda: _configured("route", routes.BIGQUERY.name), widget=forms.RadioSelect)
    objectId = object_id_field()
    candid = candid_field()
    subscription_name = subscription_field()
    max_results = forms.IntegerField(required=True, initial=10, min_value=1, max_value=MAX_RESULTS)
    timeout = rest_pull_timeout_field("Pub/Sub: stop after this many seconds without a new message")
    classtar_threshold = classtar_threshold_field()
    classtar_gt_lt = classtar_gt_lt_field()
    reliability_threshold = reliability_threshold_field()
    table_name = table_name_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        configured_survey = _configured("survey")
        if configured_survey:
            self.fields["survey"].initial = configured_survey
        self.fields["objectId"].help_text += " (BigQuery)"
        self.fields["candid"].help_text += " (BigQuery)"
        self.fields["subscription_name"].help_text = "Pub/Sub: " + self.fields["subscription_name"].help_text
        self.fields["route"].help_text = _status_link()

    def clean(self) -> dict:
        cleaned_data = super().clean()
        routes.refuse_fields_the_route_does_not_read(self, cleaned_data)
        route = routes.dataservice_routes().get(cleaned_data.get("route"), routes.BIGQUERY)
        return route.clean(self, cleaned_data)


class PittGoogleDataService(DataService):
    """ZTF and Rubin/LSST alerts from the Pitt-Google broker: BigQuery history or a Pub/Sub pull."""

    name = "Pitt-Google"
    verbose_name = "Pitt-Google alert broker (ZTF, Rubin/LSST)"
    info_url = "https://pitt-broker.readthedocs.io"
    app_link = "https://pypi.org/project/tom-pittgoogle/"
    query_results_table = "tom_pittgoogle/partials/dataservice_results_table.html"
    service_notes = (
        "BigQuery searches Pitt-Google's alert tables; a Pub/Sub pull takes the alerts that arrived on a "
        "subscription since the last pull (and acknowledges them once stored)."
    )

    try:
        app_version = metadata.version("tom-pittgoogle")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        app_version = None

    @classmethod
    def get_form_class(cls) -> type[PittGoogleQueryForm]:
        return PittGoogleQueryForm

    @classmethod
    def get_configuration(cls, config_type=None, value=None, **kwargs):
        # TOM Toolkit's version raises when DATA_SERVICES has no entry and the default is falsy; nothing here
        # needs configuring (Google's credentials are resolved as for the brokers), so no entry is fine.
        try:
            return super().get_configuration(config_type, value, **kwargs)
        except NotConfiguredError:
            return value if config_type else []

    def build_query_parameters(self, parameters: Mapping[str, Any], **kwargs: Any) -> dict:
        """The route's fields of the form's cleaned data (or a saved query's parameters)."""
        if not isinstance(parameters, Mapping):  # a saved query edited in the admin
            raise QueryServiceError(
                f"{self.name}: the query's stored parameters are a {type(parameters).__name__}, not named values: "
                "save the query again from its form."
            )
        name = parameters.get("route") or routes.BIGQUERY.name
        query = {"survey": parameters.get("survey") or "ztf", "route": name}
        # An unknown route keeps only the survey and the route, which query_service's validation then names.
        route = routes.dataservice_routes().get(name) if isinstance(name, str) else None
        # Only the fields the parameters have: a missing one (a query saved by an older version) takes the form's
        # initial value when the query is validated again, as a missing key should.
        query.update({key: parameters[key] for key in (route.fields if route else ()) if key in parameters})
        query[FOR_USER] = self._user_pk()
        if route is not None and "subscription_name" in route.fields:
            try:
                query["subscription_name"], _ = subscription_and_survey(query)
            except (PittGoogleError, TypeError):  # an unknown survey: query_service's validation names it
                pass
        if route is not None and route.fresh_each_run:
            # RunQueryView shows its cached rows again when the parameters equal the last query's; a pull must
            # pull anew each time (the alerts it showed were acknowledged), and the ingester keeps storing, so
            # each run's parameters differ.
            query["run"] = uuid.uuid4().hex
        return query

    def build_query_parameters_from_target(self, target, **kwargs: Any) -> dict:
        """The history search of any Target (a survey's object, a TNS name, coordinates typed in): a cone of
        ``PITTGOOGLE_MATCH_RADIUS_ARCSEC`` around it and its names that are survey object ids, in both surveys
        (:func:`tom_pittgoogle.routes.target_history.history_parameters`)."""
        try:
            return {**target_history.history_parameters(target, UPDATE_MAX_RESULTS), FOR_USER: self._user_pk()}
        except PittGoogleError as error:
            raise PittGoogleQueryServiceError(f"{self.name}: {error}") from error

    def _user_pk(self) -> Any:
        user = getattr(self, "user", None)
        return user.pk if user is not None and user.is_authenticated else None

    def query_service(self, query_parameters: Mapping[str, Any], **kwargs: Any) -> list[dict]:
        """The lightened alerts of the query; a failure is a ``QueryServiceError`` the results page shows.

        Refused to a visitor who is not logged in (it uses Google credentials and a pull stores alerts), and to
        stored parameters that no longer pass the form.
        """
        try:
            refuse_anonymous(f"a {self.name} query", getattr(self, "user", None))
            query_parameters = self._revalidated(query_parameters)
            route = routes.dataservice_routes().get(query_parameters.get("route"), routes.BIGQUERY)
            report = routes.RunReport()
            result = route.query(query_parameters, None, user=getattr(self, "user", None), report=report)
            self.notice, self.subscription_filter = report.notice, report.subscription_filter
            if route.paged:
                self.stored_page = result
                alerts = result.alerts
            else:
                alerts = result
        except PittGoogleError as error:
            report_failure(logger, self.name, error)
            raise PittGoogleQueryServiceError(f"{self.name}: {error}", getattr(error, "link", None)) from error
        self.query_results = alerts
        return alerts

    def _revalidated(self, query_parameters: Mapping[str, Any]) -> dict:
        """The query's parameters after the form's validation (each a value the form accepts)."""
        cleaned = revalidate_parameters(PittGoogleQueryForm, query_parameters, data_service=self.name)
        return {**query_parameters, **{key: cleaned[key] for key in (*query_parameters, "survey") if key in cleaned}}

    def query_targets(self, query_parameters: Mapping[str, Any], **kwargs: Any) -> list[dict]:
        """One row per alert: what the results table shows, the Target's aliases, and the alert itself (its
        light curve is stored from it when a Target is created, without another query)."""
        rows = [self.result_row(alert) for alert in self.query_service(query_parameters, **kwargs)]
        for row in rows:
            row[FOR_USER] = self._user_pk()
        return rows

    @staticmethod
    def result_row(alert: Mapping[str, Any]) -> dict:
        alert = lighten_alert(alert)
        generic = {
            "name": targets.target_name(alert),
            "survey": alert["survey"],
            "object_id": str(alert["object_id"]),
            "source_id": str(alert["source_id"]),
            "jd": alert.get("jd"),
            "ra": alert.get("ra"),
            "dec": alert.get("dec"),
            "band": alert.get("band"),
            "mag": alert.get("mag"),
            "points": len(alert.get("photometry") or []),
            "url": conf.object_url(alert["survey"], alert["object_id"]),
        }
        return {**generic, "aliases": targets.target_aliases(alert), "alert": alert,
                "reduced_datums": {"photometry": [alert]}}

    def create_target_from_query(self, target_result: Mapping[str, Any], **kwargs: Any):
        """The Target of the row's object: the TOM's own if it has one (by name or alias), else a new one."""
        from tom_targets.models import Target

        if target_result.get(FOR_USER, self._user_pk()) != self._user_pk():
            # TOM Toolkit keeps the last query's rows in one cache for everyone: these are another user's.
            raise ResultOfAnotherQueryError(
                "These results belong to another user's query (TOM Toolkit keeps only the last query's results): "
                "run your query again, then create the Targets."
            )
        alert = target_result["alert"]
        return targets.find_target(alert) or Target(
            name=targets.target_name(alert), type="SIDEREAL", ra=alert.get("ra"), dec=alert.get("dec")
        )

    def create_target_extras_from_query(self, target_result: Mapping[str, Any], **kwargs: Any) -> dict:
        """Survey, latest magnitude, band and time, scores; an older alert does not roll an existing Target's back."""
        alert = target_result["alert"]
        existing = targets.find_target(alert)
        if existing is not None and not targets.newer_than_stored(existing, alert):
            return {}
        return targets.target_extras(alert)

    def query_photometry(self, query_parameters: Mapping[str, Any], **kwargs: Any) -> list[dict]:
        """The alerts of a Target's history (parameters of :meth:`build_query_parameters_from_target`: both
        surveys' BigQuery tables and the stored alerts, attached to the Target as they are found), or of a BigQuery
        search; each one's light curve is stored by :meth:`create_reduced_datums_from_query`."""
        if "history_of" not in query_parameters:
            return self.query_service({**query_parameters, "route": routes.BIGQUERY.name})
        from tom_targets.models import Target

        try:
            user = getattr(self, "user", None)
            refuse_anonymous(f"a {self.name} history search", user)
            target = Target.objects.get(pk=query_parameters["history_of"])
            # TOM Toolkit's view lets any logged-in user update any Target's data; its history adds points,
            # aliases and extras, so it is for those who may change the Target (as TOM Toolkit's own edit page).
            if getattr(user, "is_authenticated", False) and not user.has_perm(
                    f"{target._meta.app_label}.change_target", target):
                raise PittGoogleQueryServiceError(
                    f"{self.name}: you may not change {target.name}, so its history was not fetched.")
            self._history = target_history.fetch_history(target, query_parameters)
        except PittGoogleError as error:
            report_failure(logger, self.name, error)
            raise PittGoogleQueryServiceError(f"{self.name}: {error}", getattr(error, "link", None)) from error
        return self._history.alerts

    def create_reduced_datums_from_query(self, target, data=None, data_type: str | None = None, **kwargs: Any):
        """Store the light curve of each alert in ``data`` on ``target`` (idempotent: a known point is skipped)."""
        from tom_dataproducts.models import PhotometryReducedDatum

        if data_type not in (None, "photometry") or not data:
            return []
        new = sum(targets.save_photometry(target, alert) for alert in data)
        logger.info("stored %d new photometry points for %s from %d alerts", new, target, len(data))
        # The alerts a Target was created from are attached to it as any route attaches (an AttachedAlert, the
        # signal once): its history, fetched later, does not count them as new.
        attach_found({"": data}, only_target=target)
        return list(PhotometryReducedDatum.objects.filter(target=target, source_name=targets.SOURCE_NAME))

    def query_reduced_data(self, target, **kwargs: Any) -> dict:
        """*Update Reduced Data* (and the Target page's Pitt-Google button): the Target's history, from both surveys'
        BigQuery tables and the alerts this TOM stored, attached to it as it is found; remembers what it found so
        that storing it can tell the user what came of it."""
        from tom_dataproducts.models import PhotometryReducedDatum

        points_before = PhotometryReducedDatum.objects.filter(target=target).count()
        self._history = None
        data = super().query_reduced_data(target, **kwargs)
        self._updating = (target.pk, self._history, points_before)
        return data

    def to_reduced_datums(self, target, data_results=None, **kwargs: Any) -> list:
        """TOM Toolkit's storing of the data; after *Update Reduced Data*, a message on the Target's page says what
        each survey gave and what was new (TOM Toolkit's view says nothing when it worked)."""
        from tom_dataproducts.models import PhotometryReducedDatum

        updating, self._updating = getattr(self, "_updating", None), None
        stored = super().to_reduced_datums(target, data_results, **kwargs)
        if updating is not None and updating[0] == target.pk and updating[1] is not None:
            new = PhotometryReducedDatum.objects.filter(target=target).count() - updating[2]
            _tell_user(update_message(updating[1], new), link=updating[1].link)
        return stored

    def get_additional_context_data(self) -> dict:
        """The stored route's page (position, previous and next) for the results table's pager."""
        return {"stored_page": getattr(self, "stored_page", None), "pittgoogle_notice": getattr(self, "notice", None),
                "pittgoogle_subscription_filter": getattr(self, "subscription_filter", "")}

    def get_success_message(self, **kwargs: Any) -> str:
        return f"{self.name}: query completed."


def update_message(history: target_history.TargetHistory, new_points: int) -> str:
    """What *Update Reduced Data* found of each survey and what was new, in plain words."""
    from tom_pittgoogle.core.alerts import SURVEYS

    notes = list(dict.fromkeys(report.note for report in history.surveys.values() if report.note))
    if not any(report.found for report in history.surveys.values()):
        said = (f"Pitt-Google: no ZTF or Rubin/LSST alert of {history.target_name} (within "
                f"{conf.get('PITTGOOGLE_MATCH_RADIUS_ARCSEC')} arcsec of it or named after it) in BigQuery or among "
                "the alerts stored in this TOM; nothing to add.")
        return " ".join([said, *notes])
    parts = []
    for survey, report in history.surveys.items():
        parts.append(f"{SURVEYS[survey].label}: {count(report.found, 'alert')} found ({report.bigquery} in BigQuery, "
                     f"{report.stored} stored in this TOM), {report.new} new")
    points = (f"{count(new_points, 'new light-curve point')} added" if new_points
              else "its light curve already had every point of them")
    aliases = f"; new aliases: {', '.join(history.new_aliases)}" if history.new_aliases else ""
    return " ".join([f"Pitt-Google, history of {history.target_name}: {'; '.join(parts)}; {points}{aliases}.",
                     *notes])


def _tell_user(message: str, link: str | None = None) -> None:
    """Show ``message`` on the next page of the request being served (a command's run logs it instead); the
    ``link`` it quotes, if any, is a link there."""
    from django.contrib import messages
    from django.utils.safestring import mark_safe

    actor = current_actor()
    request = getattr(actor, "request", None)
    logger.info("%s", message)
    if request is not None:
        messages.info(request, mark_safe(error_html(message, link)))  # error_html escapes the message
