"""The app's own pages besides the Google sign-in: the ingesters' status, and paging a paged route (stored)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tom_pittgoogle.adapters.route_table import route_of
from tom_pittgoogle.core.heartbeat import ingester_status, late_seconds
from tom_pittgoogle.routes.stored_alerts import MAX_PAGE


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
