"""The broker results page's *Create Targets*, sending the user back to the alerts they chose from.

TOM Toolkit's ``CreateTargetFromAlertView`` sends the user back to the query's run page when no Target could
be made (a name already taken, nothing selected, an alert no longer cached), and that page runs the query
again: a stream route pulls and acknowledges other alerts, and the ones the user saw are gone from the page.
These views wrap TOM Toolkit's: the same Targets are made the same way, and the way back shows the fetched
alerts again (:func:`~tom_pittgoogle.adapters.broker_base.showing_fetched_results`).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from tom_alerts.models import BrokerQuery
from tom_alerts.views import CreateTargetFromAlertView, RunQueryView

from tom_pittgoogle.adapters.broker_base import fetched_results, showing_fetched_results


class CreateTargetsFromResultsView(CreateTargetFromAlertView):
    """TOM Toolkit's *Create Targets*; its way back to the query goes to the results the user chose from."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        query_id = request.POST.get("query_id", "")
        results_key = request.POST.get("results_key", "")
        if (results_key and query_id.isdigit() and response.status_code == 302
                and response.url == reverse("tom_alerts:run", kwargs={"pk": int(query_id)})):
            return redirect("tom_pittgoogle:query-results", pk=int(query_id), key=results_key)
        return response


class FetchedResultsView(RunQueryView):
    """A query's results page showing the alerts it fetched before (kept for an hour), without running it."""

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        alerts = fetched_results(kwargs["key"])
        if alerts is None:
            messages.warning(request, "The results of that query are no longer kept: run the query again to "
                                      "fetch new alerts.")
            return redirect("tom_alerts:list")
        query = get_object_or_404(BrokerQuery, pk=kwargs["pk"])
        with showing_fetched_results(alerts):
            response = super().get(request, *args, **kwargs)
            response.render()
        # Showing the same results is not a run of the query.
        BrokerQuery.objects.filter(pk=query.pk).update(last_run=query.last_run)
        return response


create_targets = CreateTargetsFromResultsView.as_view()
fetched_results_page = FetchedResultsView.as_view()
