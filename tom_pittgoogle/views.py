"""The app's own pages besides the Google sign-in: the ingesters' status, and paging a paged route (stored)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tom_pittgoogle.adapters.route_table import route_of
from tom_pittgoogle.core.heartbeat import ingester_status, late_seconds


@login_required
def status(request: HttpRequest) -> HttpResponse:
    """Each ingester (late ones marked) and the newest rejected messages with their reasons, not their bytes."""
    report = ingester_status()
    for ingester in report.ingesters:
        ingester.late_after = late_seconds(ingester.row)
    return render(request, "tom_pittgoogle/status.html", {"status": report})


@login_required
def stored_page(request: HttpRequest, page: int) -> HttpResponse:
    """Run the current stored-alerts query again at another page (the query is the session's, as the
    data-services pages keep it)."""
    parameters = dict(request.session.get("query_parameters") or {})
    route = route_of(parameters, default=None)
    if route is not None and route.paged:
        parameters["page"] = max(1, page)
        request.session["query_parameters"] = parameters
    return redirect("dataservices:run")
