"""Any Target's history: every ZTF and Rubin/LSST alert that belongs to it, from BigQuery and from the stored alerts.

A Target need not be named after a survey's object: a TNS name typed in with coordinates is enough. Its history
(:func:`fetch_history`) is, for each survey,

- the alerts of the survey's BigQuery alerts tables within ``PITTGOOGLE_MATCH_RADIUS_ARCSEC`` of the Target
  (a cone search, newest table first; on Rubin's tables the cone reads the HEALPix clustering columns), and those
  of each of its names that is the survey's object id (``ZTF25aakxptk``, ``LSST-<diaObjectId>``, a bare
  ``diaObjectId`` alias), newest first, up to ``max_results`` per search;
- the alerts this TOM's ingester stored within the cone or of those objects, and those already attached to it.

The BigQuery searches of both surveys together stay under the cost guard (``PITTGOOGLE_BIGQUERY_MAX_BYTES``):
each is dry-run first; when together they would scan more, the cheapest run first, as many as fit, and the
others do not run, except that a Rubin search, whose tables are partitioned by publication day, reads their
newest partitions only (the last 365, 90, 30 or 7 days: the longest that fits); the history says which and why.
A survey whose tables cannot be searched (no Google credentials, no access, a missing table) is said so too; the
stored alerts are still read.

What is found is attached to the Target (:func:`tom_pittgoogle.core.attach.attach_found`): its light curve, each
survey's object id as an alias, its extras, one ``alert_attached`` signal per alert newly attached. The BigQuery
results are also attached to the other followed Targets they belong to, as every BigQuery search's are.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tom_pittgoogle import conf
from tom_pittgoogle.core.alerts import SURVEYS, validate
from tom_pittgoogle.core.attach import attach_found
from tom_pittgoogle.exceptions import ConfigurationError, CredentialsError, PittGoogleError
from tom_pittgoogle.routes.bigquery import cost, rows
from tom_pittgoogle.routes.database_python import ConsumerDatabasePython
from tom_pittgoogle.routes.stored_alerts import of_target

logger = logging.getLogger(__name__)

#: Alerts read per search (each one carries its recent light curve).
HISTORY_MAX_RESULTS = 100
#: When a Rubin survey's whole tables would cost too much: its newest partitions, the longest window that fits.
LSST_RECENT_DAYS = (365, 90, 30, 7)


@dataclass
class SurveyHistory:
    """What a Target's history found of one survey."""

    #: Alerts found in the survey's BigQuery tables, and among the stored alerts (an alert may be in both).
    bigquery: int = 0
    stored: int = 0
    #: Distinct alerts found, and how many of them were newly attached to the Target.
    found: int = 0
    new: int = 0
    #: Why its BigQuery tables were not searched, or were searched only in part ("" when they were searched whole).
    note: str = ""


@dataclass
class TargetHistory:
    """The alerts of a Target's history, newest first, and what each survey gave."""

    target_name: str
    alerts: list[dict] = field(default_factory=list)
    surveys: dict[str, SurveyHistory] = field(default_factory=lambda: {name: SurveyHistory() for name in SURVEYS})
    #: Light-curve points and aliases the Target gained.
    new_points: int = 0
    new_aliases: list[str] = field(default_factory=list)
    #: A URL a note quotes (where a TOM user connects a Google account), for a page to show as a link.
    link: str | None = None


def survey_object_ids(names: list[str]) -> dict[str, list[str]]:
    """Which of a Target's names are survey object ids: ZTF objectIds, and Rubin's ``LSST-<id>``,
    ``LSST-SS-<id>`` or bare decimal ids (the ``diaObjectId`` aliases this app gives)."""
    found: dict[str, list[str]] = {name: [] for name in SURVEYS}
    for name in names:
        text = str(name).strip()
        if validate.ZTF_OBJECT_ID.fullmatch(text):
            found["ztf"].append(text)
            continue
        for prefix in ("LSST-SS-", "LSST-", ""):
            if text.startswith(prefix) and validate.is_decimal_id(text[len(prefix):]):
                found["lsst"].append(text[len(prefix):])
                break
    return {survey: list(dict.fromkeys(ids)) for survey, ids in found.items()}


def history_parameters(target: Any, max_results: int = HISTORY_MAX_RESULTS) -> dict:
    """What a Target's history searches for: the cone around it and its survey object ids.

    Raises :class:`ConfigurationError` for a Target with neither coordinates nor a survey object id among its
    names: nothing tells which alerts are its.
    """
    names = [str(target.name), *target.aliases.values_list("name", flat=True)]
    parameters: dict[str, Any] = {"history_of": target.pk, "object_ids": survey_object_ids(names),
                                  "max_results": max_results}
    if target.ra is not None and target.dec is not None:
        parameters.update(cone_ra=float(target.ra) % 360.0, cone_dec=float(target.dec),
                          cone_radius_arcsec=float(conf.get("PITTGOOGLE_MATCH_RADIUS_ARCSEC")))
    elif not any(parameters["object_ids"].values()):
        raise ConfigurationError(
            f"{target.name} has no coordinates and none of its names is a ZTF or Rubin/LSST object id, so "
            "Pitt-Google cannot tell which alerts are its: give it coordinates (or a survey's object id as an alias)."
        )
    return parameters


def _cone(parameters: Mapping[str, Any]) -> dict | None:
    keys = ("cone_ra", "cone_dec", "cone_radius_arcsec")
    return {key: parameters[key] for key in keys} if parameters.get("cone_ra") is not None else None


def _searches(parameters: Mapping[str, Any], survey: str) -> list[dict]:
    """The BigQuery searches of one survey: the cone, and each object id."""
    limit = {"max_results": int(parameters.get("max_results") or HISTORY_MAX_RESULTS)}
    cone = _cone(parameters)
    searches = [{**cone, **limit}] if cone else []
    searches += [{"objectId": object_id, **limit} for object_id in parameters["object_ids"].get(survey, [])]
    return searches


def fetch_history(target: Any, parameters: Mapping[str, Any] | None = None) -> TargetHistory:
    """Search both surveys for ``target``'s alerts (BigQuery and the stored alerts) and attach what is found.

    ``parameters``: :func:`history_parameters` of the Target (made here when not given).
    """
    from tom_dataproducts.models import PhotometryReducedDatum

    from tom_pittgoogle.models import AttachedAlert

    parameters = parameters if parameters is not None else history_parameters(target)
    history = TargetHistory(str(target.name))
    points_before = PhotometryReducedDatum.objects.filter(target=target).count()
    aliases_before = set(target.aliases.values_list("name", flat=True))
    attached_before = _attached_per_survey(target)

    found_in_bigquery = _search_bigquery(parameters, history)
    by_route: dict[str, list[dict]] = {}
    found: list[dict] = []
    for survey in SURVEYS:
        alerts = found_in_bigquery.get(survey, [])
        for route, alert in alerts:
            by_route.setdefault(route, []).append(alert)
        stored = of_target(
            survey, cone=_cone(parameters), object_ids=parameters["object_ids"].get(survey, []),
            source_ids=AttachedAlert.objects.filter(target=target, survey=survey).values("source_id"),
            limit=int(parameters.get("max_results") or HISTORY_MAX_RESULTS),
        )
        for route, alert in stored:
            by_route.setdefault(route or "stored alerts", []).append(alert)
        report = history.surveys[survey]
        report.bigquery, report.stored = len(alerts), len(stored)
        distinct = rows.merge_newest_first([alert for _, alert in alerts + stored], len(alerts) + len(stored))
        report.found = len(distinct)
        found += distinct
    # Attached to this Target, whether a followed TargetList holds it or not: the user asked for its history.
    attach_found(by_route, only_target=target)

    attached_after = _attached_per_survey(target)
    for survey, report in history.surveys.items():
        report.new = attached_after.get(survey, 0) - attached_before.get(survey, 0)
    history.alerts = rows.merge_newest_first(found, len(found))
    history.new_points = PhotometryReducedDatum.objects.filter(target=target).count() - points_before
    history.new_aliases = sorted(set(target.aliases.values_list("name", flat=True)) - aliases_before)
    logger.info("history of %s: %s", target.name, "; ".join(
        f"{survey} {report.found} found, {report.new} new" for survey, report in history.surveys.items()))
    return history


def _attached_per_survey(target: Any) -> dict[str, int]:
    from django.db.models import Count

    from tom_pittgoogle.models import AttachedAlert

    return dict(AttachedAlert.objects.filter(target=target).values("survey").annotate(n=Count("id"))
                .values_list("survey", "n"))


@dataclass
class _Planned:
    """One survey's BigQuery searches, dry-run: what each would scan and how many tables each reads."""

    consumer: ConsumerDatabasePython
    searches: list[dict]
    estimates: list[int]
    tables: list[int]

    @property
    def total(self) -> int:
        return sum(self.estimates)


def _remembered(estimate: Callable[[str, Any], int]) -> Callable[[str, Any], int]:
    """``estimate`` answering once per query: the plan's dry runs are not repeated when the searches run."""
    known: dict[tuple, int] = {}

    def remembered(sql_text: str, job_config: Any) -> int:
        key = (sql_text, tuple((p.name, repr(getattr(p, "value", getattr(p, "values", None))))
                               for p in job_config.query_parameters))
        if key not in known:
            known[key] = estimate(sql_text, job_config)
        return known[key]

    return remembered


def _plan(survey: str, searches: list[dict]) -> _Planned:
    consumer = ConsumerDatabasePython(survey=survey, attach=True)
    consumer.estimate_bytes = _remembered(consumer.estimate_bytes)
    estimates, tables = [], []
    for search in searches:
        queries = consumer.plan(search)
        estimates.append(sum(max(0, int(consumer.estimate_bytes(q.sql, q.job_config))) for q in queries))
        tables.append(len(queries))
    return _Planned(consumer, searches, estimates, tables)


def _recent(searches: list[dict], days: int) -> list[dict]:
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).replace(microsecond=0)
    return [{**search, "start_time": start.isoformat()} for search in searches]


def _search_bigquery(parameters: Mapping[str, Any], history: TargetHistory) -> dict[str, list[tuple[str, dict]]]:
    """Each survey's BigQuery alerts of the history, with the table each came from, under one cost guard: the
    searches run cheapest first while together they fit ``PITTGOOGLE_BIGQUERY_MAX_BYTES``; a Rubin search that
    does not fit reads its tables' newest partitions, if some fit; the others do not run, and the history says so."""
    max_bytes = int(conf.get("PITTGOOGLE_BIGQUERY_MAX_BYTES"))
    planned: dict[str, _Planned] = {}
    for survey in SURVEYS:
        searches = _searches(parameters, survey)
        if not searches:
            continue
        try:
            planned[survey] = _plan(survey, searches)
        except PittGoogleError as error:
            _note(history, survey, _not_searched(survey, error))
            history.link = history.link or getattr(error, "link", None)
    estimates = {(survey, index): estimate for survey, plan in planned.items()
                 for index, estimate in enumerate(plan.estimates)}
    running, refused = cost.fit_budget(estimates, max_bytes)
    spent = sum(estimates[part] for part in running)
    # (survey, the plan that runs it, its index there)
    runs = [(survey, planned[survey], index) for survey, index in running]
    for survey, index in sorted(refused):
        search, label = planned[survey].searches[index], SURVEYS[survey].label
        narrowed = _newest_partitions(survey, search, max_bytes - spent) if survey == "lsst" else None
        whole = cost.format_bytes(estimates[survey, index])
        if narrowed is None:
            _note(history, survey, (
                f"{label} BigQuery search {_described(search)} not run: it would scan {whole}, more than the "
                f"{cost.format_bytes(max(max_bytes - spent, 0))} left of the {cost.format_bytes(max_bytes)} this TOM "
                "allows a search (PITTGOOGLE_BIGQUERY_MAX_BYTES)."))
            continue
        days, plan = narrowed
        spent += plan.total
        runs.append((survey, plan, 0))
        _note(history, survey, (
            f"{label} BigQuery search {_described(search)} read the last {days} days only: its whole tables would "
            f"scan {whole}, more than this TOM allows a search ({cost.format_bytes(max_bytes)}, "
            "PITTGOOGLE_BIGQUERY_MAX_BYTES)."))

    found: dict[str, dict[tuple[str, str], tuple[str, dict]]] = {}
    needs = [max(plan.estimates[index], plan.tables[index] * cost.MIN_BILLED_BYTES) for _, plan, index in runs]
    for (survey, plan, index), share in zip(runs, cost.share_budget(max_bytes, needs), strict=True):
        plan.consumer.max_bytes = share
        try:
            alerts = plan.consumer.query_alerts(plan.searches[index])
        except PittGoogleError as error:
            _note(history, survey, _not_searched(survey, error))
            history.link = history.link or getattr(error, "link", None)
            continue
        for alert in alerts:  # one survey's searches may find an alert twice (by cone and by name)
            found.setdefault(survey, {})[rows.alert_key(alert)] = (
                plan.consumer.found_in.get(rows.alert_key(alert), ""), alert)
    return {survey: list(unique.values()) for survey, unique in found.items()}


def _described(search: Mapping[str, Any]) -> str:
    if search.get("objectId"):
        return f"of object {search['objectId']}"
    return f"within {search.get('cone_radius_arcsec'):g} arcsec of the Target"


def _note(history: TargetHistory, survey: str, note: str) -> None:
    report = history.surveys[survey]
    if note not in report.note:
        report.note = f"{report.note} {note}".strip()


def _newest_partitions(survey: str, search: Mapping[str, Any], budget: int) -> tuple[int, _Planned] | None:
    """The longest recent window of Rubin's day partitions in which ``search`` fits ``budget``, or None."""
    for days in LSST_RECENT_DAYS:
        try:
            narrowed = _plan(survey, _recent([dict(search)], days))
        except PittGoogleError:
            return None
        if narrowed.total <= budget:
            return days, narrowed
    return None


def _not_searched(survey: str, error: PittGoogleError) -> str:
    label = SURVEYS[survey].label
    if isinstance(error, CredentialsError):  # the same for both surveys: said once
        return f"BigQuery not searched: {error} Only the alerts stored in this TOM were read."
    return f"{label} BigQuery tables not searched: {error}"
