"""TOM Toolkit broker that listens to a Pitt-Google Pub/Sub stream with the Python client's streaming pull.

Relies on :class:`~tom_pittgoogle.routes.stream_python.ConsumerStreamPython` for the connection and the
data. For a whole night's stream, run the consumer outside a web request.
"""

from __future__ import annotations

from crispy_forms.layout import HTML, Layout
from django import forms

from tom_pittgoogle.adapters.attribute_fields import stream_options
from tom_pittgoogle.adapters.broker_base import PittGoogleBroker, StreamFilterForm
from tom_pittgoogle.adapters.query_fields import open_query_consumer
from tom_pittgoogle.routes.stream_python import DEFAULT_MAX_BACKLOG, ConsumerStreamPython

#: Settings for whoever tunes the route, not for choosing alerts: shown folded under "Advanced settings".
ADVANCED_FIELDS = ("max_backlog", "save_metadata")

#: Bounds of the form's numbers: a query answers a web request (a night's stream is `manage.py
#: pittgoogle_stream`'s), and gRPC refuses flow-control limits past 2**31 without saying so.
MAX_RESULTS_LIMIT = 10_000
TIMEOUT_LIMIT = 3600
MAX_BACKLOG_LIMIT = 10_000


class FilterAlertsForm(StreamFilterForm):
    """Form for a StreamPython query; at least one stopping condition (max_results, timeout) is required."""

    max_results = forms.IntegerField(
        required=False,
        initial=100,
        min_value=1,
        max_value=MAX_RESULTS_LIMIT,
        help_text="Stop after this many alerts passed the filter and were stored.",
    )
    timeout = forms.IntegerField(
        required=False,
        initial=30,
        min_value=1,
        max_value=TIMEOUT_LIMIT,
        help_text="Stop after this many seconds without a new message.",
    )
    max_backlog = forms.IntegerField(
        required=False,
        initial=DEFAULT_MAX_BACKLOG,
        min_value=1,
        max_value=MAX_BACKLOG_LIMIT,
        help_text=(
            "Flow control: the most messages pulled but not yet processed. Lower it with a small 'Max "
            "results' to avoid leasing many messages that will only be handed back."
        ),
    )
    save_metadata = forms.ChoiceField(
        required=True,
        choices=[("yes", "yes"), ("no", "no")],
        initial="yes",
        widget=forms.RadioSelect,
        help_text="Whether to save the message id with each stored alert.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The astronomer's fields first; flow control and message ids folded away (open when one has an error).
        self.helper.layout = Layout(
            *(name for name in self.fields if name not in ADVANCED_FIELDS),
            HTML('<details class="mb-3" id="pittgoogle-advanced"'
                 "{% if form.max_backlog.errors or form.save_metadata.errors %} open{% endif %}>"
                 "<summary>Advanced settings (flow control, message ids)</summary>"),
            *ADVANCED_FIELDS,
            HTML("</details>"),
        )

    def clean(self):
        cleaned_data = super().clean()
        if cleaned_data.get("max_results") is None and cleaned_data.get("timeout") is None:
            raise forms.ValidationError(
                "Set at least one stopping condition: Max results or Timeout (otherwise the pull never ends)."
            )
        return cleaned_data


class BrokerStreamPython(PittGoogleBroker):
    """Pitt-Google broker that pulls alerts from Pub/Sub with the Python client's streaming pull.

    Each alert that passes the filter is stored in the TOM's database before its message is acknowledged;
    the stored alerts are returned.
    """

    name = "Pitt-Google StreamPython"
    form = FilterAlertsForm

    def _clean_parameters(self, parameters):
        clean_params = dict(parameters)
        if clean_params.get("max_backlog") is None:
            clean_params["max_backlog"] = DEFAULT_MAX_BACKLOG
        return clean_params

    def request_alerts(self, parameters: dict) -> list[dict]:
        consumer, self.notice = open_query_consumer(ConsumerStreamPython, parameters, self.query_user(),
                                                     **stream_options(parameters))
        self.subscription_filter = consumer.subscription.filter_expression
        return consumer.stream_alerts(lighten_alerts=True, user_filter=self.user_filter, parameters=parameters)
