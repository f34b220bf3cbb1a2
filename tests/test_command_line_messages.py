"""A failed query says so once, in plain text, on the command line (``runbrokerquery``, ``rundataquery``), and
as HTML (escaped, with its link) on the results page. Failure here: no Google credentials at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from tom_alerts.models import BrokerQuery
from tom_dataservices.models import DataServiceQuery

from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest

from .conftest import USER_PROJECT
from .test_credentials import no_google_environment  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_google_environment")]

ROOT = Path(__file__).resolve().parents[1]
#: A phrase of the message a TOM without credentials gets; it quotes "the TOM's server".
MESSAGE = "gcloud auth application-default login` on the TOM's server"
STREAM_QUERY = {"subscription_name": "ztf-loop", "survey": "ztf", "classtar_threshold": None,
                "classtar_gt_lt": "lt", "max_results": 1, "timeout": 1}


def manage(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings", PGDATABASE=connection.settings_dict["NAME"],
               GOOGLE_CLOUD_PROJECT=USER_PROJECT)
    return subprocess.run([sys.executable, "-m", "django", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def assert_plain_and_once(output: str) -> None:
    assert output.count(MESSAGE) == 1, output
    assert "&#x27;" not in output and "&quot;" not in output and "<a " not in output, output


def test_runbrokerquery_prints_a_failure_once_in_plain_text_and_exits_1():
    BrokerQuery.objects.create(name="no credentials", broker=BrokerStreamRest.name, parameters=STREAM_QUERY)
    result = manage("runbrokerquery", "no credentials")
    assert result.returncode == 1
    # Django prints a CommandError as its class name and message, on standard error, with no traceback.
    assert result.stderr.startswith("BrokerQueryError: Pitt-Google StreamRest: "), result.stderr
    assert_plain_and_once(result.stdout + result.stderr)


def test_rundataquery_logs_a_failure_once_in_plain_text():
    query = DataServiceQuery.objects.create(name="no credentials", data_service="Pitt-Google",
                                            parameters={"survey": "ztf", "route": "bigquery",
                                                        "objectId": "ZTF18abfkwnk", "max_results": 1})
    result = manage("rundataquery", str(query.pk))
    assert_plain_and_once(result.stdout + result.stderr)


def test_the_results_page_shows_the_same_failure_as_escaped_html(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("astronomer", password="not-used"))
    query = BrokerQuery.objects.create(name="no credentials", broker=BrokerStreamRest.name, parameters=STREAM_QUERY)
    page = client.get(reverse("alerts:run", kwargs={"pk": query.pk})).content.decode()
    assert "on the TOM&#x27;s server" in page
