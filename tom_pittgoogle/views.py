"""The app's own pages besides the Google sign-in: the ingesters' status, and paging a paged route (stored);
and plotly.js, served once for the status page's plots."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import etag, require_safe

from tom_pittgoogle.adapters.route_table import route_of
from tom_pittgoogle.core.heartbeat import Status, backlog_history, ingester_status, late_seconds
from tom_pittgoogle.core.latency import night, night_timeline
from tom_pittgoogle.routes.stored_alerts import MAX_PAGE

#: How long a browser keeps plotly.js (a year): its URL names its version, so an upgrade is a new URL.
PLOTLY_JS_MAX_AGE = 365 * 24 * 3600


@login_required
def status(request: HttpRequest) -> HttpResponse:
    """Each ingester (late ones marked) and the newest rejected messages with their reasons, not their bytes."""
    report = ingester_status()
    for ingester in report.ingesters:
        ingester.late_after = late_seconds(ingester.row)
    return render(request, "tom_pittgoogle/status.html", {
        "status": report, "plots": status_plots(report),
        "plotly_js": reverse("tom_pittgoogle:plotly-js", args=[plotly_js_version()]),
    })


def status_plots(report: Status) -> dict[str, str]:
    """The night per minute as plotly figures (drawn as TOM Toolkit draws its light curves): each stream's alerts
    per minute and its TOM leg's p95, and each ingester's backlog. The page loads plotly.js once, from
    :func:`plotly_js`, so the figures carry only their data."""
    from plotly import graph_objs as go

    the_night = report.night or night()
    timeline = night_timeline(the_night.since)

    def figure(traces: list, title: str, y_title: str, element: str) -> str:
        layout = go.Layout(title=title, height=320, margin={"l": 60, "r": 20, "t": 40, "b": 40},
                           xaxis={"title": "minute (UTC)"}, yaxis={"title": y_title}, showlegend=True)
        return go.Figure(data=traces, layout=layout).to_html(full_html=False, include_plotlyjs=False, div_id=element)

    return {
        "alerts": figure([go.Scatter(x=timeline.minutes[s], y=timeline.alerts[s], mode="lines+markers", name=s)
                          for s in timeline.minutes], "Alerts per minute", "alerts", "pittgoogle-plot-alerts"),
        "tom_p95": figure([go.Scatter(x=timeline.minutes[s], y=timeline.tom_p95[s], mode="lines+markers", name=s)
                           for s in timeline.minutes], "Pitt-Google → TOM, p95 per minute", "seconds",
                          "pittgoogle-plot-tom-p95"),
        # A step line: a sample is written when the backlog changes, so it holds until the next one.
        "backlog": figure([go.Scatter(x=run.minutes, y=run.backlog, mode="lines+markers", line_shape="hv",
                                      name=run.label) for run in backlog_history(the_night.since)],
                          "Backlog of each ingester (alerts received, not yet stored; the most per minute)",
                          "alerts", "pittgoogle-plot-backlog"),
    }


@cache
def plotly_js_path() -> Path:
    """The plotly.js bundled with the installed ``plotly`` package (TOM Toolkit's own dependency)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


@cache
def plotly_js_version() -> str:
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


@require_safe
@etag(lambda request, version: f'"plotly.js-{version}"')
def plotly_js(request: HttpRequest, version: str) -> HttpResponse:
    """plotly.js, from this machine (no CDN: a TOM may run offline), cached by the browser for a year.

    A URL of another version (a page from before plotly was upgraded) is sent to the installed one."""
    current = plotly_js_version()
    if version != current:
        return redirect("tom_pittgoogle:plotly-js", version=current)
    response = FileResponse(plotly_js_path().open("rb"), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={PLOTLY_JS_MAX_AGE}, immutable"
    return response


@login_required
def stored_page(request: HttpRequest, page: int) -> HttpResponse:
    """Run the current stored-alerts query again at another page (the query is the session's, as the
    data-services pages keep it).

    Without a stored-alerts query in the session (a bookmarked or typed pager URL), the query form opens with a
    message: TOM Toolkit's run page needs a query to run. A page past :data:`MAX_PAGE` is that last page.
    """
    from django.contrib import messages

    from tom_pittgoogle.adapters.dataservices import PittGoogleDataService

    parameters = request.session.get("query_parameters")
    parameters = dict(parameters) if isinstance(parameters, Mapping) else {}
    route = route_of(parameters, default=None)
    if route is None or not route.paged or parameters.get("data_service") != PittGoogleDataService.name:
        messages.info(request, "There is no stored-alerts query to page through: run one from this form first.")
        return redirect(reverse("dataservices:create") + f"?data_service={quote(PittGoogleDataService.name)}")
    parameters["page"] = min(max(1, page), MAX_PAGE)
    request.session["query_parameters"] = parameters
    return redirect("dataservices:run")
