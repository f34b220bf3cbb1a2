"""The app's own pages besides the Google sign-in: the ingesters' status, paging a paged route (stored), and the
Target page's *Fetch Pitt-Google history* button."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tom_pittgoogle.adapters.route_table import route_of
from tom_pittgoogle.core.heartbeat import Status, ingester_status, late_seconds
from tom_pittgoogle.core.latency import night_timeline
from tom_pittgoogle.routes.stored_alerts import MAX_PAGE

logger = logging.getLogger(__name__)


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


@login_required
@require_POST
def target_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Fetch the Target's Pitt-Google history now, as TOM Toolkit's *Update Reduced Data* does with the
    DataService (``query_reduced_data``, then ``to_reduced_datums``), and go back to the Target's Pitt-Google tab
    with what came of it in a message. Only for a user who may change the Target; a failure (no credentials, the
    cost guard, a Target Pitt-Google cannot search for) is a message on the page."""
    from django.contrib import messages
    from django.urls import reverse
    from django.utils.html import format_html
    from django.utils.safestring import mark_safe
    from tom_dataservices.dataservices import QueryServiceError
    from tom_targets.models import Target

    from tom_pittgoogle.adapters.dataservices import PittGoogleDataService
    from tom_pittgoogle.adapters.query_messages import UserFacingError, error_html
    from tom_pittgoogle.core.acting import acting_for_request
    from tom_pittgoogle.exceptions import PittGoogleError
    from tom_pittgoogle.templatetags.pittgoogle_targets import TAB_ID, user_may

    target = get_object_or_404(Target, pk=pk)
    if not user_may(request.user, target, "change_target"):
        raise PermissionDenied("You may not change this Target, so you may not fetch its history.")
    service = PittGoogleDataService(user=request.user)
    failed = None
    with acting_for_request(request):  # as the app's middleware does: Google is called for this user
        try:
            service.to_reduced_datums(target, service.query_reduced_data(target))
        except (QueryServiceError, PittGoogleError) as error:
            cause = error if isinstance(error, UserFacingError) else None
            failed = (mark_safe(error_html(cause.message, cause.link)) if cause is not None  # error_html escapes
                      else str(error))
        except Exception:  # a bug, or a service down in a way nobody foresaw: the log has it, the page says so
            logger.exception("fetching the Pitt-Google history of Target %s failed", target.pk)
            failed = "an unexpected error (the server's log has the details)"
    if failed is not None:
        messages.error(request, format_html("Could not fetch the Pitt-Google history of {}: {}", target.name, failed))
    return redirect(reverse("tom_targets:detail", kwargs={"pk": target.pk}) + f"?tab={TAB_ID}")
