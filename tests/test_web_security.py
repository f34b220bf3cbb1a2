"""Who may run what from the TOM's pages, and what a page never shows (issue 11, items 5 to 8): anonymous
visitors, one user's results and Google account kept from another, PITTGOOGLE_AS_USER kept out of web requests,
the token-encryption key, DEBUG error pages and key rotation. Through the TOM's own pages, on the emulators,
PostgreSQL and the loopback OAuth server of ``test_oauth``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tom_alerts.models import BrokerQuery
from tom_dataservices.models import DataServiceQuery
from tom_targets.models import Target

from tom_pittgoogle import checks
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.adapters.dataservices import PittGoogleDataService
from tom_pittgoogle.core.credentials import acting_as, get_credentials
from tom_pittgoogle.models import Alert, GoogleConnection
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from . import test_oauth
from .test_dataservice import form_fields
from .test_dataservice import run_query as run_dataservice_query
from .test_oauth import ALICE, BOB, CLIENT_SECRET, ENCRYPTION_KEY, RecordingProxy, bearer_tokens, connect
from .test_tom_pages import STREAM_FILTER, create_query, run_query

pytestmark = pytest.mark.django_db

# The sign-in's fixtures: the loopback OAuth server, no site credentials, Pub/Sub behind a token-checking proxy.
oauth_server = test_oauth.oauth_server
no_site_credentials = test_oauth.no_site_credentials
pubsub_proxy = test_oauth.pubsub_proxy

SERVICE = PittGoogleDataService.name


def without_our_middleware(settings) -> list[str]:
    return [name for name in settings.MIDDLEWARE if name != "tom_pittgoogle.middleware.CurrentUserMiddleware"]


@pytest.fixture
def alice(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice", password="not-used"))
    return client


@pytest.fixture
def bob(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("bob", password="not-used"))
    return client


@pytest.fixture
def bigquery_proxy(bigquery_emulator, ztf_table, oauth_server, no_site_credentials, settings):
    """BigQuery as Google serves it: only bearer tokens the OAuth server issued (no BIGQUERY_EMULATOR_HOST)."""
    proxy = RecordingProxy(bigquery_emulator.endpoint, oauth_server)
    settings.PITTGOOGLE_BIGQUERY_ENDPOINT = proxy.url
    yield proxy
    proxy.stop()


def urls_with(*patterns):
    """The test TOM's URLs plus ``patterns`` (a view that runs code inside a real web request)."""
    from tom_pittgoogle.demo import urls

    return type("urls", (), {"urlpatterns": [*patterns, *urls.urlpatterns]})


def feedback_of(page) -> str:
    return page.context.get("query_feedback") or page.context.get("broker_feedback") or ""


# --- item 5: nobody anonymous runs a query ------------------------------------------------------------------


def test_an_anonymous_visitor_cannot_run_a_saved_dataservice_pull(client, settings, topic_name, publish, packets,
                                                                  django_user_model):
    """TOM Toolkit's data-services run page lets anonymous visitors in (AUTH_STRATEGY READ_ONLY): the query is
    refused before it pulls, so nothing is stored or acknowledged."""
    assert settings.AUTH_STRATEGY == "READ_ONLY"
    ConsumerStreamRest(topic_name)
    publish(topic_name, packets[:3])
    query = DataServiceQuery.objects.create(name="pull", data_service=SERVICE, parameters=form_fields(
        route="pubsub", subscription_name=topic_name, max_results=3, timeout=2))

    page = client.get(reverse("dataservices:run_saved", kwargs={"pk": query.pk}))
    assert page.status_code == 200
    assert page.context["results"] == []
    assert "Log in to run a Pitt-Google query" in feedback_of(page)
    assert not Alert.objects.exists()

    # Nothing was acknowledged: a logged-in astronomer's run gets all three.
    client.force_login(django_user_model.objects.create_user("astronomer"))
    page = client.get(reverse("dataservices:run_saved", kwargs={"pk": query.pk}))
    assert len(page.context["results"]) == 3
    assert Alert.objects.count() == 3


def test_an_anonymous_visitor_cannot_run_a_saved_broker_query(client, topic_name, publish, packets, settings):
    """TOM Toolkit's alerts run page asks anonymous visitors to log in; the broker refuses them as well
    (whatever view calls it), so nothing is pulled."""
    ConsumerStreamRest(topic_name)
    publish(topic_name, packets[:2])
    query = BrokerQuery.objects.create(name="rest", broker=BrokerStreamRest.name, parameters={
        "subscription_name": topic_name, "max_results": 2, "timeout": 1, "classtar_threshold": None,
        "classtar_gt_lt": "lt"})
    response = client.get(reverse("alerts:run", kwargs={"pk": query.pk}))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")

    # The same broker run inside an anonymous web request, through Django's handler and the middleware.
    from django.http import HttpResponse
    from django.urls import path

    from tom_pittgoogle.adapters.broker_base import BrokerQueryError

    outcome = {}

    def view(request):
        try:
            outcome["alerts"] = list(BrokerStreamRest().fetch_alerts(dict(query.parameters)))
        except BrokerQueryError as error:
            outcome["error"] = str(error)
        return HttpResponse("done")

    settings.ROOT_URLCONF = urls_with(path("broker-run/", view))
    assert client.get("/broker-run/").status_code == 200
    assert "Log in to run a Pitt-Google StreamRest query" in outcome["error"]
    assert not Alert.objects.exists()
    assert len(ConsumerStreamRest(topic_name).pull_alerts(max_results=2, max_wait=2)) == 2


# --- item 6: one user's results never reach another ---------------------------------------------------------


def test_dataservice_results_fetched_with_one_users_account_are_not_served_to_another(
        alice, bob, oauth_server, bigquery_proxy, ztf_table):
    connect(alice, oauth_server, ALICE)
    record = ztf_table[0]
    page = run_dataservice_query(alice, objectId=record["objectId"], max_results=5)
    rows = page.context["results"]
    assert rows and {row["name"] for row in rows} == {record["objectId"]}
    alice_token = GoogleConnection.objects.get(user__username="alice").access_token
    assert bearer_tokens(bigquery_proxy) == {f"Bearer {alice_token}"}

    # Bob has no Google account and the site no credentials: the same search is his own query, which fails.
    page = run_dataservice_query(bob, objectId=record["objectId"], max_results=5)
    assert page.context["results"] == []
    assert "connect your Google account" in page.content.decode()
    assert record["objectId"] not in {row.get("name") for row in page.context["results"]}
    assert bearer_tokens(bigquery_proxy) == {f"Bearer {alice_token}"}

    # Alice runs again (her rows are the cached ones now); Bob cannot make Targets from them either.
    run_dataservice_query(alice, objectId=record["objectId"], max_results=5)
    response = bob.post(reverse("dataservices:create-target"), {
        "data_service": SERVICE, "query_id": "", "selected_results": ["0"]}, follow=True)
    assert any("belong to another user's query" in str(message) for message in response.context["messages"])
    assert not Target.objects.filter(name=record["objectId"]).exists()


# --- item 7: PITTGOOGLE_AS_USER is for commands only --------------------------------------------------------


def test_pittgoogle_as_user_in_a_web_servers_environment_never_gives_a_request_that_users_token(
        alice, bob, oauth_server, pubsub_proxy, topic_name, settings, monkeypatch):
    """The web server has PITTGOOGLE_AS_USER=alice and lacks the middleware: Bob's query is refused instead of
    carrying Alice's bearer token; a command still acts as Alice."""
    settings.MIDDLEWARE = without_our_middleware(settings)
    connect(alice, oauth_server, ALICE)
    query = create_query(bob, BrokerStreamRest.name, subscription_name=topic_name, max_results=1, timeout=1,
                         **STREAM_FILTER)
    monkeypatch.setenv("PITTGOOGLE_AS_USER", "alice")

    page = run_query(bob, query)
    assert "PITTGOOGLE_AS_USER is set where this TOM serves web pages" in feedback_of(page)
    page = run_dataservice_query(bob, route="pubsub", subscription_name=topic_name, max_results=1, timeout=1)
    assert "PITTGOOGLE_AS_USER is set where this TOM serves web pages" in page.content.decode()
    assert pubsub_proxy.seen == []

    # A command is not a web request: there it acts as Alice.
    call_command("runbrokerquery", query.name)
    alice_token = GoogleConnection.objects.get(user__username="alice").access_token
    assert bearer_tokens(pubsub_proxy) == {f"Bearer {alice_token}"}


def test_pittgoogle_as_user_is_refused_in_a_thread_a_web_request_started(alice, oauth_server, settings,
                                                                        monkeypatch, django_user_model):
    """A thread does not inherit the request's context; while the request is in flight it is refused too."""
    import threading

    from django.http import HttpResponse
    from django.urls import path

    from tom_pittgoogle.exceptions import CredentialsError

    connect(alice, oauth_server, ALICE)
    monkeypatch.setenv("PITTGOOGLE_AS_USER", "alice")
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    outcome = {}

    def in_thread():
        try:
            outcome["token"] = get_credentials("pubsub").token
        except CredentialsError as error:
            outcome["error"] = str(error)

    def view(request):
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join(30)
        return HttpResponse("done")

    settings.MIDDLEWARE = without_our_middleware(settings)
    settings.ROOT_URLCONF = urls_with(path("thread/", view))
    assert Client().get("/thread/").status_code == 200
    assert "token" not in outcome and "PITTGOOGLE_AS_USER" in outcome["error"]
    # Outside any request the same call acts as Alice.
    assert get_credentials("pubsub").token == GoogleConnection.objects.get().access_token


# --- item 8: the encryption key, DEBUG pages, rotation ------------------------------------------------------

MALFORMED_KEY = "not-a-fernet-key"


def test_a_malformed_encryption_key_fails_the_system_check(settings):
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = MALFORMED_KEY
    errors = checks.check_token_encryption_key()
    assert [error.id for error in errors] == ["tom_pittgoogle.E001"]
    assert MALFORMED_KEY not in errors[0].msg
    with pytest.raises(SystemCheckError, match="PITTGOOGLE_TOKEN_ENCRYPTION_KEY is not a Fernet key"):
        call_command("check")
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = [Fernet.generate_key().decode(), ENCRYPTION_KEY]
    assert checks.check_token_encryption_key() == []


def test_a_malformed_encryption_key_stops_the_sign_in_before_google(alice, oauth_server, settings):
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = MALFORMED_KEY
    response = alice.get(reverse("tom_pittgoogle:oauth-connect"))
    assert response.status_code == 503
    assert "PITTGOOGLE_TOKEN_ENCRYPTION_KEY is not a Fernet key" in response.content.decode()
    assert "Location" not in response
    assert oauth_server.tokens == [] and oauth_server.token_requests == []


def test_tokens_the_tom_cannot_store_are_revoked_and_the_callback_is_a_message(alice, oauth_server,
                                                                              settings):
    response = alice.get(reverse("tom_pittgoogle:oauth-connect"))
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = MALFORMED_KEY  # changed while the user was at Google
    consent = requests.get(response["Location"], allow_redirects=False, timeout=10)
    back = consent.headers["Location"].split("testserver", 1)[1]
    page = alice.get(back)
    assert page.status_code == 503
    assert "revoked at Google" in page.content.decode()
    assert not GoogleConnection.objects.exists()
    issued = oauth_server.tokens_of("astronomer@example.org")
    assert issued and all(token.revoked for token in issued)


def test_a_debug_error_page_of_the_callback_shows_no_token_code_verifier_or_secret(
        django_user_model, oauth_server, settings, monkeypatch):
    """A forced error inside the callback, while it encrypts the tokens, with DEBUG on: Django's technical 500
    page lists every frame's local variables; none holds a token, the code, the verifier or the client secret."""
    settings.DEBUG = True
    browser = Client(raise_request_exception=False)
    browser.force_login(django_user_model.objects.create_user("alice"))

    def broken_encrypt(self, data, current_time):
        raise RuntimeError("forced failure while encrypting")

    monkeypatch.setattr(Fernet, "encrypt_at_time", broken_encrypt)
    page = connect(browser, oauth_server, ALICE)
    text = page.content.decode()
    assert page.status_code == 500
    assert "forced failure while encrypting" in text and "Local vars" in text  # the technical page, with locals
    secrets_ = {CLIENT_SECRET}
    for token in oauth_server.tokens:
        secrets_ |= {token.access_token, token.refresh_token}
    for request in oauth_server.token_requests:
        secrets_ |= {request["code"], request["code_verifier"]}
    assert len(secrets_) == 5
    assert [secret for secret in secrets_ if secret in text] == []
    # The grant Google issued was revoked, and nothing was stored.
    assert all(token.revoked for token in oauth_server.tokens)
    assert not GoogleConnection.objects.exists()


def test_a_debug_error_page_of_a_query_hides_what_is_named_like_a_secret_and_bearer_tokens(client, settings):
    """Frames nobody marked sensitive (a client library's, during a query): with the middleware, a DEBUG page
    hides locals named like a secret, the same keys of a dict or of headers, and bearer tokens."""
    import secrets

    from django.urls import path
    from requests.structures import CaseInsensitiveDict

    secret_values = [secrets.token_urlsafe(24) for _ in range(4)]  # made here: the page's source lines show no value

    def view(request):
        access_token = secret_values[0]  # noqa: F841
        headers = CaseInsensitiveDict({"Authorization": f"Bearer {secret_values[1]}", "Accept": "json"})  # noqa: F841
        pending = {"refresh_token": secret_values[2], "state": "visible-state"}  # noqa: F841
        value = f"Bearer {secret_values[3]}"  # noqa: F841
        raise RuntimeError("forced failure in a query")

    settings.DEBUG = True
    settings.ROOT_URLCONF = urls_with(path("query-failure/", view))
    page = Client(raise_request_exception=False).get("/query-failure/")
    text = page.content.decode()
    assert page.status_code == 500 and "forced failure in a query" in text and "visible-state" in text
    assert [secret for secret in secret_values if secret in text] == []


def _expire_access_token(username: str) -> None:
    GoogleConnection.objects.filter(user__username=username).update(expiry=timezone.now() - timedelta(minutes=5))


def test_rotating_keys_re_encrypts_both_tokens_so_the_old_key_can_go(alice, oauth_server, no_site_credentials,
                                                                    settings):
    connect(alice, oauth_server, ALICE)
    new_key = Fernet.generate_key().decode()
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = [new_key, ENCRYPTION_KEY]
    _expire_access_token("alice")
    with acting_as("alice"):
        get_credentials("pubsub")  # decrypts both tokens and refreshes the access token
    connection = GoogleConnection.objects.get()
    assert not connection.tokens_need_reencryption()

    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = new_key  # the old key removed
    _expire_access_token("alice")
    with acting_as("alice"):
        token = get_credentials("pubsub").token
    assert oauth_server.valid_access_token(token) is not None
    assert not GoogleConnection.objects.get().broken


def test_pittgoogle_reencrypt_tokens_re_encrypts_every_connection(alice, bob, oauth_server, no_site_credentials,
                                                                  settings, capsys):
    connect(alice, oauth_server, ALICE)
    connect(bob, oauth_server, BOB)
    before = {c.user.username: (c.access_token, c.refresh_token) for c in GoogleConnection.objects.all()}
    new_key = Fernet.generate_key().decode()
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = [new_key, ENCRYPTION_KEY]
    assert all(c.tokens_need_reencryption() for c in GoogleConnection.objects.all())

    call_command("pittgoogle_reencrypt_tokens")
    assert "Re-encrypted the tokens of 2 Google connection(s)" in capsys.readouterr().out

    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = new_key  # the old key removed: every connection still works
    for connection in GoogleConnection.objects.select_related("user"):
        assert (connection.access_token, connection.refresh_token) == before[connection.user.username]
    for username in ("alice", "bob"):
        _expire_access_token(username)
        with acting_as(username):
            assert oauth_server.valid_access_token(get_credentials("bigquery").token) is not None
    assert not GoogleConnection.objects.filter(broken=True).exists()


def test_pittgoogle_reencrypt_tokens_marks_unreadable_connections_broken(alice, oauth_server, settings):
    connect(alice, oauth_server, ALICE)
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = Fernet.generate_key().decode()  # the old key lost
    with pytest.raises(CommandError, match="1 connection"):
        call_command("pittgoogle_reencrypt_tokens")
    assert GoogleConnection.objects.get().broken
