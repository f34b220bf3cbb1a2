"""The app's own pages besides the Google sign-in: the ingesters' status, and paging a paged route (stored)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tom_pittgoogle.adapters.route_table import route_of
from tom_pittgoogle.core.heartbeat import Status, ingester_status, late_seconds
from tom_pittgoogle.core.latency import night_timeline
from tom_pittgoogle.routes.stored_alerts import MAX_PAGE


@login_required
def status(request: HttpRequest) -> HttpResponse:
    """Each ingester (late ones marked) and the newest rejected messages with their reasons, not their bytes."""
    report = ingester_status()
    for ingester in report.ingesters:
        ingester.late_after = late_seconds(ingester.row)
    return render(request, "tom_pittgoogle/status.html", {"status": report, "plots": status_plots(report)})


def status_plots(report: Status) -> dict[str, str]:
    """The night per minute as plotly figures (drawn as TOM Toolkit draws its light curves): each stream's alerts
    per minute and its TOM leg's p95, and each running ingester's backlog."""
    from plotly import graph_objs as go

    timeline = night_timeline()

    def figure(traces: list, title: str, y_title: str, element: str) -> str:
        layout = go.Layout(title=title, height=320, margin={"l": 60, "r": 20, "t": 40, "b": 40},
                           xaxis={"title": "minute (UTC)"}, yaxis={"title": y_title}, showlegend=True)
        # plotly.js inlined once, in the first figure (TOM Toolkit inlines it in each plot's div).
        return go.Figure(data=traces, layout=layout).to_html(
            full_html=False, include_plotlyjs=element == "pittgoogle-plot-alerts", div_id=element)

    running = [ingester for ingester in report.ingesters if ingester.state != "stopped"]
    return {
        "alerts": figure([go.Scatter(x=timeline.minutes[s], y=timeline.alerts[s], mode="lines+markers", name=s)
                          for s in timeline.minutes], "Alerts per minute", "alerts", "pittgoogle-plot-alerts"),
        "tom_p95": figure([go.Scatter(x=timeline.minutes[s], y=timeline.tom_p95[s], mode="lines+markers", name=s)
                           for s in timeline.minutes], "Pitt-Google → TOM, p95 per minute", "seconds",
                          "pittgoogle-plot-tom-p95"),
        "backlog": figure([go.Bar(x=[f"{i.row.host} {i.row.pid}" for i in running],
                                  y=[i.row.backlog for i in running], name="backlog")],
                          "Backlog of the running ingesters (alerts received, not yet stored)", "alerts",
                          "pittgoogle-plot-backlog"),
    }


@login_required
def stored_page(request: HttpRequest, page: int) -> HttpResponse:
    """Run the current stored-alerts query again at another page (the query is the session's, as the
    data-services pages keep it).

    Without a stored-alerts query in the session (a bookmarked or typed pager URL), the query form opens with a
    message: TOM Toolkit's run page needs a query to run. A page past :data:`MAX_PAGE` is that last page.
    """
    from django.contrib import messages
    from django.urls import reverse

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
