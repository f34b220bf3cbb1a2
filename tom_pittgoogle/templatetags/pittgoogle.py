"""Template tags of the Pitt-Google pages."""

from __future__ import annotations

from django import template

from tom_pittgoogle.adapters.route_table import BIGQUERY, route_of

register = template.Library()


@register.simple_tag(takes_context=True)
def dataservice_nothing_matched(context) -> str:
    """What an empty DataService result means: what was searched (the saved query's or the form's parameters)."""
    if context.get("query_feedback"):  # the query failed: the page says why
        return ""
    query = context.get("query")
    if query is not None:
        parameters = query.parameters
    else:
        request = context.get("request")
        parameters = request.session.get("query_parameters", {}) if request is not None else {}
    # A route no longer known is explained as a search, the DataService's default.
    return (route_of(parameters) or BIGQUERY).nothing_matched(parameters)
