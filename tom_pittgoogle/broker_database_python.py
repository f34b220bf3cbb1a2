"""TOM Toolkit broker that queries Pitt-Google's BigQuery alert table with the Python client.

Relies on :class:`~tom_pittgoogle.consumer_database_python.ConsumerDatabasePython`.
"""

from __future__ import annotations

from django import forms
from tom_alerts.alerts import GenericQueryForm

from .broker_base import GoogleAccountFormMixin, PittGoogleBroker
from .consumer_database_python import ConsumerDatabasePython
from .query_fields import SEARCH, candid_field, clean_search, object_id_field, survey_field


class FilterAlertsForm(GoogleAccountFormMixin, GenericQueryForm):
    """Form for a BigQuery search of the survey's table: by object id or by source id (not both), newest first."""

    survey = survey_field()
    objectId = object_id_field()
    candid = candid_field()
    max_results = forms.IntegerField(required=True, initial=10, min_value=1, max_value=1000)

    def clean(self):
        return clean_search(self, super().clean())


class BrokerDatabasePython(PittGoogleBroker):
    """Pitt-Google broker that queries the BigQuery alert table (history, not a stream)."""

    name = "Pitt-Google DatabasePython"
    form = FilterAlertsForm
    query_kind = SEARCH

    def request_alerts(self, parameters: dict) -> list[dict]:
        """Query the table with the user's filter (in the SQL, as query parameters)."""
        return ConsumerDatabasePython(survey=parameters.get("survey") or "ztf").query_alerts(parameters)
