"""TOM Toolkit broker that queries Pitt-Google's BigQuery alert table with the Python client.

Relies on :class:`~tom_pittgoogle.consumer_database_python.ConsumerDatabasePython`.
"""

from __future__ import annotations

from django import forms
from tom_alerts.alerts import GenericQueryForm

from .broker_base import GoogleAccountFormMixin, PittGoogleBroker
from .consumer_database_python import ConsumerDatabasePython


class FilterAlertsForm(GoogleAccountFormMixin, GenericQueryForm):
    """Form for a BigQuery search: by objectId or by candid (not both), newest first."""

    objectId = forms.CharField(required=False, max_length=64, help_text="ZTF object id, e.g. ZTF18abfkwnk")
    candid = forms.IntegerField(required=False, min_value=0, help_text="ZTF candidate id")
    max_results = forms.IntegerField(required=True, initial=10, min_value=1, max_value=1000)

    def clean(self):
        cleaned_data = super().clean()
        if cleaned_data.get("objectId") and cleaned_data.get("candid") is not None:
            raise forms.ValidationError("Search by objectId or by candid, not both.")
        return cleaned_data


class BrokerDatabasePython(PittGoogleBroker):
    """Pitt-Google broker that queries the BigQuery alert table (history, not a stream)."""

    name = "Pitt-Google DatabasePython"
    form = FilterAlertsForm

    def request_alerts(self, parameters: dict) -> list[dict]:
        """Query the table with the user's filter (in the SQL, as query parameters)."""
        return ConsumerDatabasePython().query_alerts(parameters)
