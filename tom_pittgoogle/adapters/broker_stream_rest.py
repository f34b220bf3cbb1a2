"""TOM Toolkit broker that pulls a Pitt-Google Pub/Sub stream through the REST API.

Relies on :class:`~tom_pittgoogle.routes.stream_rest.ConsumerStreamRest` for the connection and the data.
"""

from __future__ import annotations

from django import forms

from tom_pittgoogle.adapters.attribute_fields import stream_options
from tom_pittgoogle.adapters.broker_base import PittGoogleBroker, StreamFilterForm
from tom_pittgoogle.adapters.query_fields import open_query_consumer, rest_pull_timeout_field
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest


class FilterAlertsForm(StreamFilterForm):
    """Form for a StreamRest query: subscription, classtar filter, how many alerts, how long to wait."""

    max_results = forms.IntegerField(required=True, initial=10, min_value=1, max_value=1000)
    timeout = rest_pull_timeout_field()


class BrokerStreamRest(PittGoogleBroker):
    """Pitt-Google broker that pulls alerts from a subscription through the Pub/Sub REST API.

    Alerts that pass the filter are stored in the TOM's database, then acknowledged; alerts filtered out
    are acknowledged too, so the next query starts with new ones.
    """

    name = "Pitt-Google StreamRest"
    form = FilterAlertsForm

    def request_alerts(self, parameters: dict) -> list[dict]:
        """Pull, unpack, filter, store and acknowledge; returns the alerts that passed."""
        consumer, self.notice = open_query_consumer(ConsumerStreamRest, parameters, self.query_user(),
                                                     **stream_options(parameters))
        self.subscription_filter = consumer.subscription.filter_expression
        return consumer.pull_alerts(
            int(parameters["max_results"]),
            lighten_alerts=True,
            callback=self.user_filter,
            max_wait=parameters.get("timeout"),
            parameters=parameters,
        )
