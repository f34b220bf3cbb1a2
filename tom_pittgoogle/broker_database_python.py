"""TOM Toolkit broker that queries Pitt-Google's BigQuery alert table with the Python client.

Relies on :class:`~tom_pittgoogle.consumer_database_python.ConsumerDatabasePython`.
"""

from __future__ import annotations

from django import forms
from tom_alerts.alerts import GenericQueryForm

from .broker_base import GoogleAccountFormMixin, PittGoogleBroker, survey_field
from .consumer_database_python import ConsumerDatabasePython


class FilterAlertsForm(GoogleAccountFormMixin, GenericQueryForm):
    """Form for a BigQuery search of the survey's table: by object id or by source id (not both), newest first."""

    survey = survey_field()
    objectId = forms.CharField(
        required=False,
        max_length=64,
        help_text="ZTF objectId (e.g. ZTF18abfkwnk), or Rubin/LSST diaObjectId or ssObjectId (a number)",
    )
    candid = forms.IntegerField(required=False, min_value=0, help_text="ZTF candid, or Rubin/LSST diaSourceId")
    max_results = forms.IntegerField(required=True, initial=10, min_value=1, max_value=1000)

    def clean(self):
        cleaned_data = super().clean()
        cleaned_data["survey"] = cleaned_data.get("survey") or "ztf"
        if cleaned_data.get("objectId") and cleaned_data.get("candid") is not None:
            raise forms.ValidationError("Search by objectId or by candid, not both.")
        object_id = (cleaned_data.get("objectId") or "").strip()
        if cleaned_data.get("survey") == "lsst" and object_id and not object_id.isdigit():
            self.add_error("objectId", "A Rubin/LSST object id (diaObjectId or ssObjectId) is a number.")
        return cleaned_data


class BrokerDatabasePython(PittGoogleBroker):
    """Pitt-Google broker that queries the BigQuery alert table (history, not a stream)."""

    name = "Pitt-Google DatabasePython"
    form = FilterAlertsForm

    def request_alerts(self, parameters: dict) -> list[dict]:
        """Query the table with the user's filter (in the SQL, as query parameters)."""
        return ConsumerDatabasePython(survey=parameters.get("survey") or "ztf").query_alerts(parameters)
