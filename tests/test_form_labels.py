"""The query forms say the same thing the same way: the brokers' forms and the DataService's form label their
shared fields alike, the classtar comparison is labelled and sits with the classtar threshold, and every form
links to the page that connects a Google account."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.adapters.dataservices import PittGoogleDataService, PittGoogleQueryForm

pytestmark = pytest.mark.django_db

BROKERS = [BrokerStreamRest, BrokerStreamPython, BrokerDatabasePython]


def labels(form) -> dict[str, str]:
    return {name: str(form[name].label) for name in form.fields}


def test_shared_fields_have_the_same_labels_on_every_form():
    forms = [broker.form() for broker in BROKERS] + [PittGoogleQueryForm()]
    for name in ("survey", "objectId", "candid", "subscription_name", "max_results", "timeout",
                 "classtar_threshold", "classtar_gt_lt", "reliability_threshold"):
        found = {labels(form)[name] for form in forms if name in form.fields}
        assert len(found) == 1, (name, found)
    assert labels(PittGoogleQueryForm())["objectId"] == "Object id"
    assert labels(PittGoogleQueryForm())["candid"] == "Source id (candid)"


@pytest.mark.parametrize("form_class", [BrokerStreamRest.form, BrokerStreamPython.form, PittGoogleQueryForm],
                         ids=["StreamRest", "StreamPython", "DataService"])
def test_the_classtar_comparison_is_labelled_and_follows_the_classtar_threshold(form_class):
    form = form_class()
    names = list(form.fields)
    assert names.index("classtar_gt_lt") == names.index("classtar_threshold") + 1
    assert form["classtar_gt_lt"].label == "Classtar comparison"


def test_every_query_form_page_links_to_the_google_account_page(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("astronomer", password="not-used"))
    link = f'href="{reverse("tom_pittgoogle:oauth-connection")}"'
    pages = [reverse("alerts:create") + f"?broker={broker.name}" for broker in BROKERS]
    pages.append(reverse("dataservices:create") + f"?data_service={PittGoogleDataService.name}")
    for url in pages:
        assert link in client.get(url).content.decode(), url
