"""Template tags of the Pitt-Google pages."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from tom_pittgoogle.adapters.route_table import BIGQUERY, route_of
from tom_pittgoogle.core.filters import jd_to_datetime

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


@register.filter
def alert_time(jd: float | None) -> str:
    """An alert's time as every results page shows it: the UTC date and time, its Julian Date on hover."""
    when = jd_to_datetime(jd)
    if when is None:
        return ""
    return format_html('<span class="text-nowrap" title="JD {}">{} UTC</span>', f"{float(jd):.5f}",
                       when.strftime("%Y-%m-%d %H:%M:%S"))
