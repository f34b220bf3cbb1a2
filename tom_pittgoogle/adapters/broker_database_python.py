"""TOM Toolkit broker that queries Pitt-Google's BigQuery alert table with the Python client.

Relies on :class:`~tom_pittgoogle.routes.database_python.ConsumerDatabasePython`.
"""

from __future__ import annotations

from django import forms
from tom_alerts.alerts import GenericQueryForm

from tom_pittgoogle.adapters.broker_base import GoogleAccountFormMixin, PittGoogleBroker
from tom_pittgoogle.adapters.query_fields import (
    candid_field,
    object_id_field,
    survey_field,
    table_name_field,
    with_selection_fields,
)
from tom_pittgoogle.adapters.route_table import BIGQUERY


@with_selection_fields
class FilterAlertsForm(GoogleAccountFormMixin, GenericQueryForm):
    """Form for a BigQuery search of the survey's tables: by object id or by source id (not both), in a cone, in
    a time window, above a score; newest first."""

    survey = survey_field()
    objectId = object_id_field()
    candid = candid_field()
    max_results = forms.IntegerField(required=True, initial=10, min_value=1, max_value=1000)
    table_name = table_name_field()

    def clean(self):
        return BIGQUERY.clean(self, super().clean())


class BrokerDatabasePython(PittGoogleBroker):
    """Pitt-Google broker that queries the BigQuery alert tables (history, not a stream)."""

    name = "Pitt-Google DatabasePython"
    form = FilterAlertsForm
    #: Queries the tables with the user's filter (in the SQL, as query parameters), under the cost guard.
    route = BIGQUERY
