"""A page whose Google endpoint does not answer fails within PITTGOOGLE_WEB_REQUEST_TIMEOUT; a command keeps
PITTGOOGLE_REQUEST_TIMEOUT. The endpoint is a "black hole": a loopback port that accepts connections and never
answers, as a firewall that drops packets does."""

from __future__ import annotations

import signal
import socket

import pytest
from django.urls import reverse
from tom_alerts.models import BrokerQuery

from tom_pittgoogle import conf
from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.routes.database_python import ConsumerDatabasePython
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

pytestmark = pytest.mark.django_db

#: The command timeout in these tests: a page that used it would not answer within BOUND_SECONDS.
COMMAND_TIMEOUT = 600
#: The web timeout in these tests.
WEB_TIMEOUT = 2
#: The bound the page must answer within: the web timeout plus what retries, the REST pull's wait and rendering
#: add (a page takes about 2.5 s here), far below any other timeout (the command's 600 s, a library's 30-60 s).
BOUND_SECONDS = 4 * WEB_TIMEOUT + 2

STREAM = {"subscription_name": "ztf-loop", "survey": "ztf", "classtar_threshold": None, "classtar_gt_lt": "lt",
          "max_results": 1, "timeout": 1, "max_backlog": 10}
QUERIES = {
    BrokerStreamRest: STREAM,
    BrokerStreamPython: STREAM,
    BrokerDatabasePython: {"survey": "ztf", "objectId": "ZTF18abfkwnk", "candid": None, "max_results": 1},
}


@pytest.fixture
def black_hole(monkeypatch, settings):
    """Both emulator hosts point at a port that accepts connections and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    host = f"127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", host)
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", host)
    settings.PITTGOOGLE_REQUEST_TIMEOUT = COMMAND_TIMEOUT
    settings.PITTGOOGLE_WEB_REQUEST_TIMEOUT = WEB_TIMEOUT
    yield host
    sock.close()


def _no_answer(signum, frame):
    raise AssertionError(f"the page did not answer within {BOUND_SECONDS} s: it did not use the "
                         f"{WEB_TIMEOUT} s PITTGOOGLE_WEB_REQUEST_TIMEOUT")


@pytest.mark.parametrize("broker", list(QUERIES), ids=lambda broker: broker.__name__)
def test_a_page_reports_an_endpoint_that_does_not_answer_within_the_web_timeout(broker, black_hole, client,
                                                                                django_user_model):
    client.force_login(django_user_model.objects.create_user("astronomer", password="not-used"))
    query = BrokerQuery.objects.create(name="black hole", broker=broker.name, parameters=QUERIES[broker])
    previous = signal.signal(signal.SIGALRM, _no_answer)
    signal.alarm(BOUND_SECONDS)
    try:
        page = client.get(reverse("alerts:run", kwargs={"pk": query.pk}))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert page.status_code == 200
    assert "unreachable" in page.content.decode() or "did not answer" in page.content.decode()


@pytest.mark.parametrize(
    "make_consumer",
    [lambda topic: ConsumerStreamRest(topic), lambda topic: ConsumerStreamPython(topic),
     lambda topic: ConsumerDatabasePython()],
    ids=["StreamRest", "StreamPython", "DatabasePython"],
)
def test_commands_keep_the_longer_request_timeout_and_pages_use_the_web_one(make_consumer, settings, topic_name,
                                                                            ztf_table):
    settings.PITTGOOGLE_REQUEST_TIMEOUT = COMMAND_TIMEOUT
    settings.PITTGOOGLE_WEB_REQUEST_TIMEOUT = 2
    assert make_consumer(topic_name).timeout == COMMAND_TIMEOUT
    with conf.web_request():
        assert make_consumer(topic_name).timeout == 2


def test_the_web_timeout_never_lengthens_a_shorter_request_timeout(settings):
    settings.PITTGOOGLE_REQUEST_TIMEOUT = 1
    with conf.web_request():
        assert conf.get("PITTGOOGLE_REQUEST_TIMEOUT") == 1
