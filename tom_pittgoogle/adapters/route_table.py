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

from tom_pittgoogle.adapters.attribute_fields import ATTRIBUTE_FORM_KEYS, clean_attribute_filters, stream_options
from tom_pittgoogle.adapters.query_fields import (
    clean_search,
    clean_stored,
    clean_stream_filter,
)
from tom_pittgoogle.adapters.query_messages import PULL, SEARCH, nothing_matched
from tom_pittgoogle.adapters.query_subscriptions import open_query_consumer
from tom_pittgoogle.core.filters import SELECTION_KEYS, AlertFilter
from tom_pittgoogle.routes.stored_alerts import STORED_FIELDS

#: A route's own alert filter in place of the form's (a broker subclass's ``user_filter``): alert -> alert or None.
AlertFilterCallable = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]


@dataclass
class RunReport:
    """What a query's run tells its page besides the alerts."""

    #: A notice for the user (a query that read a subscription of its own beside an ingester's), or None.
    notice: str | None = None
    #: The server-side filter of the subscription a pull read ("" when it has none).
    subscription_filter: str = ""


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
    #: The query: ``run(parameters, alert_filter) -> alerts`` (a :class:`StoredPage` for a paged route); a route
    #: that ``pulls`` is also given ``user=`` and ``report=`` (see :meth:`query`).
    run: Callable[..., Any]
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
    #: It pulls from a Pub/Sub subscription: it reads a subscription of its own beside an ingester's (so it is
    #: told the user), and reports that, and the subscription's server-side filter, in a :class:`RunReport`.
    pulls: bool = False

    def query(
        self, parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None = None, *, user: Any = None,
        report: RunReport | None = None,
    ) -> Any:
        """Run the route's query for ``user``; what the page should say besides the alerts goes into ``report``."""
        if self.pulls:
            return self.run(parameters, alert_filter, user=user, report=report)
        return self.run(parameters, alert_filter)


def _open(consumer_class: type, parameters: Mapping[str, Any], user: Any, report: RunReport | None) -> Any:
    """The consumer a pull reads through: the subscription named, or a query's own beside an ingester's (never
    the ingester's own: every message a query pulls is acknowledged), with the form's topic and server filter."""
    consumer, notice = open_query_consumer(consumer_class, parameters, user, **stream_options(parameters))
    if report is not None:
        report.notice = notice
        report.subscription_filter = consumer.subscription.filter_expression
    return consumer


def _form_filter(parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None) -> AlertFilterCallable:
    """The query's alert filter, built once: the route's own, else the form's (classtar, reliability, cone...)."""
    return alert_filter if alert_filter is not None else AlertFilter.from_parameters(parameters)


def _search(parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None = None) -> list[dict]:
    # Every alerts table of the survey (or the one named), under the cost guard; the selection is in the SQL. The
    # brokers and the DataService both search here, so both attach what they find to the followed Targets it
    # belongs to (the table as the route), as the stream routes attach what they store.
    from tom_pittgoogle.routes.database_python import ConsumerDatabasePython, user_table_name

    return ConsumerDatabasePython(
        user_table_name(parameters.get("table_name")), survey=parameters.get("survey") or "ztf", attach=True
    ).query_alerts(parameters)


def _pull(
    parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None = None, *, user: Any = None,
    report: RunReport | None = None,
) -> list[dict]:
    # The REST route: one bounded pull, fit for a web request (and its deadline); what passes is stored, then
    # acknowledged.
    from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

    return _open(ConsumerStreamRest, parameters, user, report).pull_alerts(
        int(parameters.get("max_results") or 10),
        lighten_alerts=True,
        callback=_form_filter(parameters, alert_filter),
        max_wait=parameters.get("timeout"),
    )


def _stream(
    parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None = None, *, user: Any = None,
    report: RunReport | None = None,
) -> list[dict]:
    # The streaming pull, until max_results alerts are stored, nothing came for timeout seconds, or the web
    # request's deadline.
    from tom_pittgoogle.routes.stream_python import DEFAULT_MAX_BACKLOG, ConsumerStreamPython

    consumer = _open(ConsumerStreamPython, parameters, user, report)
    keep = _form_filter(parameters, alert_filter)
    parameters = dict(parameters)
    if parameters.get("max_backlog") is None:
        parameters["max_backlog"] = DEFAULT_MAX_BACKLOG
    return consumer.stream_alerts(
        lighten_alerts=True, user_filter=lambda alert, **_: keep(alert), parameters=parameters
    )


def _stored(parameters: Mapping[str, Any], alert_filter: AlertFilterCallable | None = None) -> Any:
    from tom_pittgoogle.routes import stored_alerts

    return stored_alerts.search(parameters)


def _stored_nothing_matched(parameters: Mapping[str, Any]) -> str:
    from tom_pittgoogle.routes.stored_alerts import nothing_matched as stored_nothing_matched

    return stored_nothing_matched(parameters)


#: The stream routes' filter fields (each survey's own, the selection, then the subscription's topic and its
#: server-side filter on message attributes, which only a Pub/Sub pull has).
_STREAM_FILTER = ("classtar_threshold", "classtar_gt_lt", "reliability_threshold", *SELECTION_KEYS,
                  *ATTRIBUTE_FORM_KEYS)


def _clean_stream(form: forms.Form, cleaned_data: dict) -> dict:
    return clean_attribute_filters(form, clean_stream_filter(form, cleaned_data))

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
    clean=_clean_stream,
    run=_pull,
    nothing_matched=lambda parameters: nothing_matched(parameters, PULL),
    broker="tom_pittgoogle.broker_stream_rest.BrokerStreamRest",
    fresh_each_run=True,
    pulls=True,
)
STREAM = Route(
    name="stream",
    label="",
    fields=("subscription_name", "max_results", "timeout", "max_backlog", "save_metadata", *_STREAM_FILTER),
    clean=_clean_stream,
    run=_stream,
    nothing_matched=lambda parameters: nothing_matched(parameters, PULL),
    broker="tom_pittgoogle.broker_stream_python.BrokerStreamPython",
    in_dataservice=False,
    fresh_each_run=True,
    pulls=True,
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


def refuse_fields_the_route_does_not_read(form: forms.Form, cleaned_data: dict) -> None:
    """A field the chosen DataService route would not apply, given a value other than its initial one, is a field
    error naming the routes that read it: a filter is applied or refused, never silently ignored. (Besides the
    routes' fields the form has the survey, the route, max_results, and timeout, which says how long a pull waits,
    not which alerts.)"""
    offered = dataservice_routes()
    route = offered.get(cleaned_data.get("route"))
    if route is None:
        return
    specific = dict.fromkeys(
        name for other in offered.values() for name in other.fields if name not in ("max_results", "timeout")
    )
    for name in specific:
        if name in route.fields or name not in cleaned_data or name in form.errors:
            continue
        value = cleaned_data[name]
        if value in (None, "") or value == form.get_initial_for_field(form.fields[name], name):
            continue
        readers = [other.label.split(":")[0] for other in offered.values() if name in other.fields]
        form.add_error(name, f"The {route.label.split(':')[0]} route does not read this field: clear it, or "
                             f"choose a route that does ({', '.join(readers)}).")
