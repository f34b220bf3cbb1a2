"""A TOM user's own Google account: the sign-in through the TOM's pages against a real OAuth 2.0 server on
loopback (Authlib, see ``oauth_server.py``), and the token that then reaches Pub/Sub.

Pub/Sub is the official emulator behind a small recording proxy that, like Google, accepts only bearer tokens
the authorization server issued and that are neither expired nor revoked; the StreamRest route talks to the
proxy with real credentials (no ``PUBSUB_EMULATOR_HOST``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import google.auth._helpers
import pytest
import requests
from django.core.management import CommandError, call_command
from django.urls import reverse
from tom_alerts.models import BrokerQuery

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.core import acting
from tom_pittgoogle.core.credentials import acting_as, get_credentials
from tom_pittgoogle.core.tokens import InvalidToken
from tom_pittgoogle.exceptions import CredentialsError
from tom_pittgoogle.models import GoogleConnection
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from . import conftest
from .oauth_server import Account, Clock, OAuthServer
from .refusing_proxies import ForwardingHTTPProxy
from .test_tom_pages import STREAM_FILTER, create_query, run_query

pytestmark = pytest.mark.django_db

CLIENT_ID = "tom-client-id.apps.example"
CLIENT_SECRET = "tom-client-secret-DO-NOT-SHOW"
ENCRYPTION_KEY = "bXlfb3duX2Zlcm5ldF9rZXlfZm9yX3Rlc3RzX29ubHk="  # base64 of 32 bytes
CALLBACK = "http://testserver/pittgoogle/oauth/callback/"
ALICE, BOB = "alice@example.org", "bob@example.org"
PUBSUB_SCOPE = "https://www.googleapis.com/auth/pubsub"
BIGQUERY_SCOPE = "https://www.googleapis.com/auth/bigquery"
#: Lifetime of the access tokens of the refresh tests (seconds), and how far the clock moves to outlive one.
SHORT_LIVED = 60
OUTLIVE = SHORT_LIVED + 1


@pytest.fixture
def oauth_server(settings):
    server = OAuthServer(CLIENT_ID, CLIENT_SECRET, CALLBACK)
    server.start()
    settings.PITTGOOGLE_OAUTH_CLIENT_ID = CLIENT_ID
    settings.PITTGOOGLE_OAUTH_CLIENT_SECRET = CLIENT_SECRET
    settings.PITTGOOGLE_OAUTH_AUTHORIZATION_URL = f"{server.url}/authorize"
    settings.PITTGOOGLE_OAUTH_TOKEN_URL = f"{server.url}/token"
    settings.PITTGOOGLE_OAUTH_REVOCATION_URL = f"{server.url}/revoke"
    settings.PITTGOOGLE_OAUTH_USERINFO_URL = f"{server.url}/userinfo"
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = ENCRYPTION_KEY
    yield server
    server.stop()


@pytest.fixture
def short_lived_tokens(oauth_server, monkeypatch):
    """Access tokens that expire in a minute; google-auth renews them 1 s ahead instead of its 3 min 45 s (a
    margin made for Google's one-hour tokens), so that a token it still uses is one the server still accepts."""
    oauth_server.expires_in = SHORT_LIVED
    monkeypatch.setattr(google.auth._helpers, "REFRESH_THRESHOLD", timedelta(seconds=1))
    return oauth_server


@pytest.fixture
def advance_clock(monkeypatch):
    """``advance(seconds)``: move the clocks that decide a token's expiry forward, google-auth's (the TOM's side)
    and the authorization server's, as waiting that long would."""
    real_utcnow = google.auth._helpers.utcnow
    shift = [0.0]
    monkeypatch.setattr(google.auth._helpers, "utcnow", lambda: real_utcnow() + timedelta(seconds=shift[0]))
    monkeypatch.setattr(Clock, "offset", 0.0)

    def advance(seconds: float) -> None:
        shift[0] += seconds
        Clock.offset += seconds

    return advance


no_site_credentials = conftest.no_site_credentials  # the fixture, also imported by name from this module


class RecordingProxy(ForwardingHTTPProxy):
    """A Google API as Google serves it: forwards to an emulator's REST endpoint what carries a bearer token the
    OAuth server issued and that is still good (else HTTP 401), and records every request's Authorization."""

    def __init__(self, upstream: str, oauth_server: OAuthServer) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.oauth_server = oauth_server
        super().__init__(upstream)

    def intercept(self, command: str, path: str, headers) -> tuple[int, dict] | None:
        authorization = headers.get("Authorization", "")
        self.seen.append((command, path, authorization))
        token = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
        if self.oauth_server.valid_access_token(token) is None:
            return 401, {"code": 401, "status": "UNAUTHENTICATED"}
        return None


@pytest.fixture
def pubsub_proxy(pubsub_emulator, topic_name, publish, oauth_server, no_site_credentials, settings):
    """Pub/Sub behind the proxy, reached over REST with real credentials (no PUBSUB_EMULATOR_HOST).

    Requests ``topic_name`` and ``publish`` first: their clients talk to the emulator directly.
    """
    proxy = RecordingProxy(f"http://{pubsub_emulator.host}", oauth_server)
    settings.PITTGOOGLE_PUBSUB_ENDPOINT = proxy.url
    yield proxy
    proxy.stop()


@pytest.fixture
def alice(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice", password="not-used"))
    return client


def connect(client, server: OAuthServer, email: str):
    """A user's sign-in: Connect, Google's consent (approved at once), the callback; returns its response."""
    response = client.get(reverse("tom_pittgoogle:oauth-connect"))
    assert response.status_code == 302
    server.approve_as = Account(email)
    consent = requests.get(response["Location"], allow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return client.get(f"{back.path}?{back.query}")


def bearer_tokens(proxy) -> set[str]:
    return {authorization for _, _, authorization in proxy.seen}


# --- the sign-in ------------------------------------------------------------------------------------------


def test_connect_sends_the_browser_to_the_consent_page_with_state_and_pkce(alice, oauth_server):
    response = alice.get(reverse("tom_pittgoogle:oauth-connect"))
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{oauth_server.url}/authorize"
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == CALLBACK
    assert set(query["scope"].split()) == {"openid", "email", PUBSUB_SCOPE, BIGQUERY_SCOPE}
    assert query["access_type"] == "offline" and query["prompt"] == "consent"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32
    # A new sign-in, a new state and challenge.
    again = parse_qs(urlsplit(alice.get(reverse("tom_pittgoogle:oauth-connect"))["Location"]).query)
    assert again["state"][0] != query["state"] and again["code_challenge"][0] != query["code_challenge"]


def test_the_whole_sign_in_stores_the_users_tokens_encrypted_and_shows_the_account(alice, oauth_server):
    response = connect(alice, oauth_server, ALICE)
    assert response.status_code == 302 and response.url == reverse("tom_pittgoogle:oauth-connection")

    connection = GoogleConnection.objects.get(user__username="alice")
    issued = oauth_server.tokens_of(ALICE)[-1]
    assert connection.email == ALICE
    assert connection.access_token == issued.access_token and connection.refresh_token == issued.refresh_token
    assert issued.access_token not in connection.access_token_encrypted
    assert issued.refresh_token not in connection.refresh_token_encrypted
    assert {PUBSUB_SCOPE, BIGQUERY_SCOPE} <= set(connection.scope_list)

    # Our client sent the PKCE verifier of the challenge it had sent to the consent page.
    exchange = oauth_server.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]

    page = alice.get(reverse("tom_pittgoogle:oauth-connection")).content.decode()
    assert ALICE in page and "Disconnect" in page


def test_pkce_is_enforced_by_the_server_and_our_client_sends_the_verifier(alice, oauth_server):
    response = alice.get(reverse("tom_pittgoogle:oauth-connect"))
    consent = requests.get(response["Location"], allow_redirects=False, timeout=10)
    back = urlsplit(consent.headers["Location"])
    code = parse_qs(back.query)["code"][0]
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    without = requests.post(f"{oauth_server.url}/token", data=exchange, timeout=10)
    wrong = requests.post(f"{oauth_server.url}/token", data={**exchange, "code_verifier": "x" * 64}, timeout=10)
    assert without.status_code == 400 and wrong.status_code == 400
    assert "access_token" not in without.text + wrong.text

    assert alice.get(f"{back.path}?{back.query}").status_code == 302  # the TOM's own exchange, with the verifier
    verifier = oauth_server.token_requests[-1]["code_verifier"]
    challenge = parse_qs(urlsplit(response["Location"]).query)["code_challenge"][0]
    assert base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode() == challenge
    assert GoogleConnection.objects.filter(user__username="alice").exists()


@pytest.mark.parametrize("state", ["wrong-state", None])
def test_a_callback_with_a_missing_or_mismatched_state_is_refused_and_nothing_is_stored(alice, oauth_server, state):
    response = alice.get(reverse("tom_pittgoogle:oauth-connect"))
    consent = requests.get(response["Location"], allow_redirects=False, timeout=10)
    back = urlsplit(consent.headers["Location"])
    query = {name: values[0] for name, values in parse_qs(back.query).items()}
    if state is None:
        del query["state"]
    else:
        query["state"] = state
    refused = alice.get(back.path, query)
    assert refused.status_code == 400
    assert "state is missing or does not match" in refused.content.decode()
    assert not GoogleConnection.objects.exists()
    assert [r for r in oauth_server.token_requests if r["grant_type"] == "authorization_code"] == []
    # The pending sign-in was used up: replaying Google's real answer now fails too.
    assert alice.get(f"{back.path}?{back.query}").status_code == 400
    assert not GoogleConnection.objects.exists()


def test_a_callback_without_a_sign_in_started_here_is_refused(alice, oauth_server):
    response = alice.get(reverse("tom_pittgoogle:oauth-callback"), {"code": "a-code", "state": "a-state"})
    assert response.status_code == 400 and not GoogleConnection.objects.exists()


def test_a_refused_consent_is_a_message(alice, oauth_server):
    response = alice.get(reverse("tom_pittgoogle:oauth-connect"))
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    page = alice.get(reverse("tom_pittgoogle:oauth-callback"), {"error": "access_denied", "state": state})
    assert "Google did not connect your account (access_denied)" in page.content.decode()
    assert not GoogleConnection.objects.exists()


def test_the_pages_need_a_login_and_disconnect_needs_a_post(client, oauth_server, django_user_model):
    for name in ("oauth-connection", "oauth-connect", "oauth-callback"):
        response = client.get(reverse(f"tom_pittgoogle:{name}"))
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client.force_login(django_user_model.objects.create_user("dave"))
    assert client.get(reverse("tom_pittgoogle:oauth-disconnect")).status_code == 405


def test_disconnect_revokes_the_grant_at_the_server_and_deletes_the_tokens(alice, oauth_server):
    connect(alice, oauth_server, ALICE)
    refresh_token = GoogleConnection.objects.get().refresh_token
    response = alice.post(reverse("tom_pittgoogle:oauth-disconnect"))
    assert response.status_code == 302
    assert not GoogleConnection.objects.exists()
    assert oauth_server.revocations[-1]["token"] == refresh_token
    assert all(token.revoked for token in oauth_server.tokens_of(ALICE))
    assert "revoked at Google" in alice.get(reverse("tom_pittgoogle:oauth-connection")).content.decode()


def test_each_query_form_links_to_the_google_account_page(alice):
    url = reverse("tom_pittgoogle:oauth-connection")
    for broker in ("Pitt-Google StreamRest", "Pitt-Google StreamPython", "Pitt-Google DatabasePython"):
        page = alice.get(reverse("alerts:create") + f"?broker={broker}").content.decode()
        assert f'href="{url}"' in page, broker


# --- the token that reaches Pub/Sub -----------------------------------------------------------------------


def test_a_query_from_the_pages_uses_the_connected_users_token(alice, oauth_server, pubsub_proxy, topic_name,
                                                              publish, packets):
    connect(alice, oauth_server, ALICE)
    query = create_query(alice, BrokerStreamRest.name, subscription_name=topic_name, max_results=2, timeout=2,
                         **STREAM_FILTER)
    run_query(alice, query)  # creates the subscription, through the proxy
    publish(topic_name, packets[:2])
    alerts = run_query(alice, query).context["alerts"]
    assert len(alerts) == 2
    alice_token = GoogleConnection.objects.get(user__username="alice").access_token
    assert bearer_tokens(pubsub_proxy) == {f"Bearer {alice_token}"}


def test_a_second_user_never_gets_the_first_users_token(alice, oauth_server, pubsub_proxy, topic_name,
                                                       django_user_model, client):
    connect(alice, oauth_server, ALICE)
    query = create_query(alice, BrokerStreamRest.name, subscription_name=topic_name, max_results=1, timeout=1,
                         **STREAM_FILTER)
    bob = django_user_model.objects.create_user("bob", password="not-used")
    client.force_login(bob)

    # Bob has no connection and the site no credentials: the page says what to do, with the link.
    page = run_query(client, query)
    link = "http://testserver" + reverse("tom_pittgoogle:oauth-connection")
    assert "connect your Google account" in page.context["broker_feedback"]
    assert f'<a href="{link}">' in page.content.decode()
    assert pubsub_proxy.seen == []

    # Bob connects his own account: his queries carry his token, never Alice's.
    connect(client, oauth_server, BOB)
    run_query(client, query)
    tokens = {c.user.username: c.access_token for c in GoogleConnection.objects.select_related("user")}
    assert tokens["alice"] != tokens["bob"]
    assert bearer_tokens(pubsub_proxy) == {f"Bearer {tokens['bob']}"}
    with acting_as(bob):
        assert get_credentials("pubsub").token == tokens["bob"]


@pytest.mark.usefixtures("short_lived_tokens")
def test_an_access_token_that_expires_mid_session_is_refreshed_without_the_user(alice, oauth_server, pubsub_proxy,
                                                                                topic_name, publish, packets,
                                                                                advance_clock):
    connect(alice, oauth_server, ALICE)
    user = GoogleConnection.objects.get().user
    with acting_as(user):
        consumer = ConsumerStreamRest(topic_name)
        first = consumer.session.credentials.token
        assert oauth_server.valid_access_token(first) is not None
        advance_clock(OUTLIVE)
        assert oauth_server.valid_access_token(first) is None  # now Pub/Sub would refuse it
        publish(topic_name, packets[:1])
        assert len(consumer.pull_alerts(max_results=1, max_wait=5)) == 1
    second = GoogleConnection.objects.get().access_token
    assert second != first
    assert [r["grant_type"] for r in oauth_server.token_requests] == ["authorization_code", "refresh_token"]
    assert {auth for _, _, auth in pubsub_proxy.seen} == {f"Bearer {first}", f"Bearer {second}"}
    assert pubsub_proxy.seen[-1][2] == f"Bearer {second}"


@pytest.mark.usefixtures("short_lived_tokens")
def test_a_revoked_grant_asks_the_user_to_reconnect(advance_clock, alice, oauth_server, pubsub_proxy, topic_name):
    connect(alice, oauth_server, ALICE)
    query = create_query(alice, BrokerStreamRest.name, subscription_name=topic_name, max_results=1, timeout=1,
                         **STREAM_FILTER)
    oauth_server.revoke_grant_of(ALICE)  # the user removed the TOM's access in their Google account
    advance_clock(OUTLIVE)
    page = run_query(alice, query)
    feedback = page.context["broker_feedback"]
    assert "reconnect your Google account" in feedback
    assert reverse("tom_pittgoogle:oauth-connection") in feedback
    connection = GoogleConnection.objects.get()
    assert connection.broken
    assert pubsub_proxy.seen == []
    assert "no longer works" in alice.get(reverse("tom_pittgoogle:oauth-connection")).content.decode()

    # Reconnecting repairs it.
    connect(alice, oauth_server, ALICE)
    assert not GoogleConnection.objects.get().broken


@pytest.mark.usefixtures("short_lived_tokens")
def test_a_grant_revoked_during_a_session_is_the_reconnect_message(alice, oauth_server, pubsub_proxy, topic_name,
                                                                   advance_clock):
    connect(alice, oauth_server, ALICE)
    with acting_as("alice"):
        consumer = ConsumerStreamRest(topic_name)
        oauth_server.revoke_grant_of(ALICE)
        advance_clock(OUTLIVE)
        with pytest.raises(CredentialsError, match="reconnect your Google account"):
            consumer.pull()
    assert GoogleConnection.objects.get().broken


# --- commands, emulators, the site's credentials ----------------------------------------------------------


def test_a_command_acts_as_the_user_it_is_told(alice, oauth_server, pubsub_proxy, topic_name, monkeypatch):
    connect(alice, oauth_server, ALICE)
    BrokerQuery.objects.create(name="as alice", broker=BrokerStreamRest.name, parameters={
        "subscription_name": topic_name, "max_results": 1, "timeout": 0.5, "classtar_threshold": None,
        "classtar_gt_lt": "lt"})
    monkeypatch.setenv("PITTGOOGLE_AS_USER", "alice")
    call_command("runbrokerquery", "as alice")
    assert bearer_tokens(pubsub_proxy) == {f"Bearer {GoogleConnection.objects.get().access_token}"}

    pubsub_proxy.seen.clear()
    monkeypatch.delenv("PITTGOOGLE_AS_USER")
    call_command("pittgoogle_as", "alice", "runbrokerquery", "as alice")
    assert bearer_tokens(pubsub_proxy) == {f"Bearer {GoogleConnection.objects.get().access_token}"}
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("pittgoogle_as", "nobody", "runbrokerquery", "as alice")

    monkeypatch.setenv("PITTGOOGLE_AS_USER", "nobody")
    with pytest.raises(CredentialsError, match="no user 'nobody'"):
        get_credentials("pubsub")


def test_a_user_named_without_a_connection_does_not_fall_back_to_site_credentials(oauth_server, no_site_credentials,
                                                                                  django_user_model):
    django_user_model.objects.create_user("carol")
    with acting_as("carol"), pytest.raises(CredentialsError, match="no connected Google account"):
        get_credentials("bigquery")


def test_with_an_emulator_a_connected_user_needs_no_credentials(alice, oauth_server, monkeypatch):
    connect(alice, oauth_server, ALICE)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    from google.auth.credentials import AnonymousCredentials

    with acting_as("alice"):
        assert isinstance(get_credentials("pubsub"), AnonymousCredentials)
    assert len(oauth_server.token_requests) == 1  # no refresh either


def test_a_changed_encryption_key_asks_to_reconnect(alice, oauth_server, no_site_credentials, settings):
    connect(alice, oauth_server, ALICE)
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = "b3RoZXJfZmVybmV0X2tleV9mb3JfdGVzdHNfb25seSE="
    with acting_as("alice"), pytest.raises(CredentialsError, match="reconnect your Google account"):
        get_credentials("pubsub")
    assert GoogleConnection.objects.get().broken


def test_without_an_encryption_key_one_derived_from_secret_key_is_used(alice, oauth_server, settings):
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = None
    connect(alice, oauth_server, ALICE)
    connection = GoogleConnection.objects.get()
    assert connection.access_token == oauth_server.tokens_of(ALICE)[-1].access_token
    settings.SECRET_KEY = "another-secret-key"
    with pytest.raises(InvalidToken):
        GoogleConnection.objects.get().access_token  # noqa: B018


# --- no secret anywhere -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("short_lived_tokens")
def test_no_token_code_or_secret_in_logs_pages_or_repr(alice, oauth_server, pubsub_proxy, topic_name, caplog,
                                                       django_user_model, client, advance_clock):
    caplog.set_level(logging.DEBUG)
    pages = [connect(alice, oauth_server, ALICE)]
    query = create_query(alice, BrokerStreamRest.name, subscription_name=topic_name, max_results=1, timeout=1,
                         **STREAM_FILTER)
    pages.append(run_query(alice, query))
    advance_clock(OUTLIVE)
    pages.append(run_query(alice, query))  # with a refresh
    pages.append(alice.get(reverse("tom_pittgoogle:oauth-connection")))
    admin = django_user_model.objects.create_superuser("admin", password="not-used")
    client.force_login(admin)
    connection = GoogleConnection.objects.get()
    pages.append(client.get(reverse("admin:tom_pittgoogle_googleconnection_change", args=[connection.pk])))
    pages.append(client.get(reverse("admin:tom_pittgoogle_googleconnection_changelist")))
    oauth_server.revoke_grant_of(ALICE)
    advance_clock(OUTLIVE)
    pages.append(run_query(alice, query))  # the reconnect message
    pages.append(alice.post(reverse("tom_pittgoogle:oauth-disconnect"), follow=True))

    secrets_ = {CLIENT_SECRET, ENCRYPTION_KEY}
    for token in oauth_server.tokens:
        secrets_ |= {token.access_token, token.refresh_token}
    for request in oauth_server.token_requests:
        secrets_ |= {value for key, value in request.items() if key in ("code", "code_verifier", "refresh_token")}
    assert len(secrets_) > 6
    # The authorization server runs in this process only because it is a test: its own (Authlib's) log lines are
    # Google's side and are left out.
    logged = "\n".join(caplog.handler.format(r) for r in caplog.records if not r.name.startswith("authlib"))
    text = logged + "".join(page.content.decode() for page in pages)
    text += repr(connection) + str(connection) + repr(acting.current_actor())
    assert [secret for secret in secrets_ if secret in text] == []
    assert all(page.status_code in (200, 302) for page in pages)


def test_the_bigquery_route_uses_the_same_users_credentials(alice, oauth_server, bigquery_emulator, ztf_table,
                                                           no_site_credentials, settings):
    """The database route gets the user's credentials from the same resolver (BigQuery emulator behind the proxy)."""
    proxy = RecordingProxy(bigquery_emulator.endpoint, oauth_server)
    settings.PITTGOOGLE_BIGQUERY_ENDPOINT = proxy.url
    try:
        connect(alice, oauth_server, ALICE)
        record = ztf_table[0]
        query = create_query(alice, BrokerDatabasePython.name, objectId=record["objectId"], candid="", max_results=5)
        alerts = run_query(alice, query).context["alerts"]
    finally:
        proxy.stop()
    assert {alert.name for alert in alerts} == {record["objectId"]}
    assert bearer_tokens(proxy) == {f"Bearer {GoogleConnection.objects.get().access_token}"}
