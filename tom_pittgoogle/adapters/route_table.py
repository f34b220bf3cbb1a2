"""The routes a Pitt-Google query can take, declared once: adding a route is a change here.

Each :class:`Route` says what its query reads from a form, how the form checks it, how the query runs (its alert
filter built once per query, not once per alert), what an empty result means, and how its results are shown.
The brokers, the DataService (its route choices, fields, validation and run), the template tag that explains an
empty result and the stored route's pager all read this table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django import forms

from tom_pittgoogle.adapters.query_fields import (
    PULL,
    SEARCH,
    clean_search,
    clean_stored,
    clean_stream_filter,
    nothing_matched,
    subscription_and_survey,
)
from tom_pittgoogle.core.filters import SELECTION_KEYS, AlertFilter
from tom_pittgoogle.routes.stored_alerts import STORED_FIELDS

#: A route's own alert filter in place of the form's (a broker subclass's ``user_filter``): alert -> alert or None.
AlertFilterCallable = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Route:
    """One way a query gets its alerts."""

    #: The value of a query's ``route`` parameter.
    name: str
    #: The DataService form's choice text ("" when the DataService does not offer it).
    label: str
    #: What the query reads from the form, besides the survey and the route.
    fields: tuple[str, ...]
    #: The form's check of the route's fields: ``clean(form, cleaned_data) -> cleaned_data``.
    clean: Callable[[forms.Form, dict], dict]
    #: The query: ``run(parameters, alert_filter) -> alerts`` (a :class:`StoredPage` for a paged route).
    run: Callable[[Mapping[str, Any], AlertFilterCallable | None], Any]
    #: What an empty result means, in plain words.
    nothing_matched: Callable[[Mapping[str, Any]], str]
    #: The TOM Toolkit broker that takes this route (its dotted path), or None.
    broker: str | None = None
    #: Whether the DataService offers it.
    in_dataservice: bool = True
    #: Each run reads anew (a pull acknowledges what it showed; the stored table keeps growing), so a run's
    #: parameters must never equal the last one's (TOM Toolkit would show the cached rows again).
    fresh_each_run: bool = False
    #: Its results come a page at a time, with a pager (``page``, ``per_page``).
    paged: bool = False


def _form_filter(parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None) -> AlertFilterCallable:
    """The query's alert filter, built once: the route's own, else the form's (classtar, reliability, cone...)."""
    return alert_filter if alert_filter is not None else AlertFilter.from_parameters(parameters)


def _search(parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None = None) -> list[dict]:
    # Every alerts table of the survey (or the one named), under the cost guard; the selection is in the SQL.
    from tom_pittgoogle.routes.database_python import ConsumerDatabasePython, user_table_name

    return ConsumerDatabasePython(
        user_table_name(parameters.get("table_name")), survey=parameters.get("survey") or "ztf"
    ).query_alerts(parameters)


def _pull(parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None = None) -> list[dict]:
    # The REST route: one bounded pull, fit for a web request; what passes is stored, then acknowledged.
    from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

    subscription, survey = subscription_and_survey(parameters)
    return ConsumerStreamRest(subscription, survey=survey).pull_alerts(
        int(parameters.get("max_results") or 10),
        lighten_alerts=True,
        callback=_form_filter(parameters, alert_filter),
        max_wait=parameters.get("timeout"),
    )


def _stream(parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None = None) -> list[dict]:
    # The streaming pull, until max_results alerts are stored or nothing came for timeout seconds.
    from tom_pittgoogle.routes.stream_python import DEFAULT_MAX_BACKLOG, ConsumerStreamPython

    subscription, survey = subscription_and_survey(parameters)
    keep = _form_filter(parameters, alert_filter)
    parameters = dict(parameters)
    if parameters.get("max_backlog") is None:
        parameters["max_backlog"] = DEFAULT_MAX_BACKLOG
    return ConsumerStreamPython(subscription, survey=survey).stream_alerts(
        lighten_alerts=True, user_filter=lambda alert, **_: keep(alert), parameters=parameters
    )


def _stored(parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None = None) -> Any:
    from tom_pittgoogle.routes import stored_alerts

    return stored_alerts.search(parameters)


def _stored_nothing_matched(parameters: Mapping[str, Any]) -> str:
    from tom_pittgoogle.routes.stored_alerts import nothing_matched as stored_nothing_matched

    return stored_nothing_matched(parameters)


#: The stream routes' filter fields (each survey's own, then the selection).
_STREAM_FILTER = ("classtar_threshold", "classtar_gt_lt", "reliability_threshold", *SELECTION_KEYS)

BIGQUERY = Route(
    name="bigquery",
    label="BigQuery search: history (every alert of an object, one alert, or the newest alerts)",
    fields=("objectId", "candid", "max_results", "table_name", *SELECTION_KEYS),
    clean=clean_search,
    run=_search,
    nothing_matched=lambda parameters: nothing_matched(parameters, SEARCH),
    broker="tom_pittgoogle.broker_database_python.BrokerDatabasePython",
)
PUBSUB = Route(
    name="pubsub",
    label="Pub/Sub pull: what is new on a stream (REST)",
    fields=("subscription_name", "max_results", "timeout", *_STREAM_FILTER),
    clean=clean_stream_filter,
    run=_pull,
    nothing_matched=lambda parameters: nothing_matched(parameters, PULL),
    broker="tom_pittgoogle.broker_stream_rest.BrokerStreamRest",
    fresh_each_run=True,
)
STREAM = Route(
    name="stream",
    label="",
    fields=("subscription_name", "max_results", "timeout", "max_backlog", "save_metadata", *_STREAM_FILTER),
    clean=clean_stream_filter,
    run=_stream,
    nothing_matched=lambda parameters: nothing_matched(parameters, PULL),
    broker="tom_pittgoogle.broker_stream_python.BrokerStreamPython",
    in_dataservice=False,
    fresh_each_run=True,
)
STORED = Route(
    name="stored",
    label="Stored alerts: what this TOM's ingester (pittgoogle_stream) stored",
    fields=STORED_FIELDS,
    clean=clean_stored,
    run=_stored,
    nothing_matched=_stored_nothing_matched,
    fresh_each_run=True,
    paged=True,
)

#: Every route, by name (read when used, so that everything follows what is here).
ROUTES: dict[str, Route] = {route.name: route for route in (BIGQUERY, PUBSUB, STREAM, STORED)}


def dataservice_routes() -> dict[str, Route]:
    """The routes the DataService offers, by name, in its form's order."""
    return {name: route for name, route in ROUTES.items() if route.in_dataservice}


def dataservice_route_choices() -> list[tuple[str, str]]:
    """The DataService form's route choices."""
    return [(name, route.label) for name, route in dataservice_routes().items()]


def route_of(parameters: Any, default: Route | None = BIGQUERY) -> Route | None:
    """The route a query's parameters name (``default`` when they name none); None for a name no route has."""
    name = parameters.get("route") if isinstance(parameters, Mapping) else None
    if not name:
        return default
    return ROUTES.get(name) if isinstance(name, str) else None
