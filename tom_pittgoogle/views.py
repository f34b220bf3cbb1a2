"""The app's own pages besides the Google sign-in: the ingesters' status, paging a paged route (stored), the
Target page's *Fetch Pitt-Google history* button; and plotly.js, served once for the status page's plots."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import etag, require_POST, require_safe

from tom_pittgoogle.adapters.route_table import route_of
from tom_pittgoogle.core.heartbeat import Status, backlog_history, ingester_status, late_seconds
from tom_pittgoogle.core.latency import night, night_timeline
from tom_pittgoogle.routes.stored_alerts import MAX_PAGE

logger = logging.getLogger(__name__)

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
