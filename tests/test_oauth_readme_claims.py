"""What the README promises about connected Google accounts that the sign-in tests (``test_oauth.py``) leave out:
Disconnect when Google does not confirm the revocation, a grant without a refresh token, scopes the user did not
allow, ``PITTGOOGLE_OAUTH_REDIRECT_URI``, encryption-key rotation, and the StreamPython (gRPC) route with a user's
token. Against the same real OAuth server on loopback and the emulators."""

# ruff: noqa: F401, F811  (the fixtures of test_oauth.py are imported by name and requested by name)

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from django.urls import reverse

from tom_pittgoogle.adapters.broker_database_python import BrokerDatabasePython
from tom_pittgoogle.core.credentials import acting_as, get_credentials
from tom_pittgoogle.core.tokens import InvalidToken
from tom_pittgoogle.exceptions import CredentialsError
from tom_pittgoogle.models import GoogleConnection

from .oauth_server import Account
from .test_oauth import (
    ALICE,
    PUBSUB_SCOPE,
    alice,
    connect,
    no_site_credentials,
    oauth_server,
)
from .test_tom_pages import create_query, run_query

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- Disconnect -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("revocation", ["refused", "unreachable"])
def test_disconnect_deletes_the_tokens_and_says_so_when_google_does_not_confirm_the_revocation(
    alice, oauth_server, settings, revocation
):
    connect(alice, oauth_server, ALICE)
    settings.PITTGOOGLE_OAUTH_REVOCATION_URL = (
        f"{oauth_server.url}/no-revocation-here" if revocation == "refused" else "http://127.0.0.1:9/revoke"
    )
    page = alice.post(reverse("tom_pittgoogle:oauth-disconnect"), follow=True)
    assert page.status_code == 200
    assert not GoogleConnection.objects.exists()
    assert not any(token.revoked for token in oauth_server.tokens_of(ALICE))  # Google still has the grant...
    # ...and the user is told where to remove it by hand.
    assert any("did not confirm the revocation" in m and "myaccount.google.com/permissions" in m
               for m in messages_of(page)), messages_of(page)


# --- what Google grants ------------------------------------------------------------------------------------


def test_a_grant_without_a_refresh_token_is_refused_with_what_to_do_and_nothing_is_stored(alice, oauth_server):
    oauth_server.client.issues_refresh_tokens = False
    page = connect(alice, oauth_server, ALICE)
    exchange = oauth_server.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code"
    assert oauth_server.tokens_of(ALICE)[-1].refresh_token is None  # the server really sent none
    assert page.status_code == 502
    assert "sent no refresh token" in page.content.decode()
    assert "myaccount.google.com/permissions" in page.content.decode()
    assert not GoogleConnection.objects.exists()


def test_a_scope_the_user_did_not_allow_is_a_message_naming_it_on_the_results_page(
    alice, oauth_server, no_site_credentials, settings
):
    """The user allowed Pub/Sub but not BigQuery on the consent screen: a DatabasePython query says so."""
    oauth_server.client.allowed_scopes = ["openid", "email", PUBSUB_SCOPE]
    connect(alice, oauth_server, ALICE)
    connection = GoogleConnection.objects.get()
    assert PUBSUB_SCOPE in connection.scope_list
    assert not any("bigquery" in scope for scope in connection.scope_list)
    settings.PITTGOOGLE_BIGQUERY_ENDPOINT = "http://127.0.0.1:9"  # never reached: the scope check comes first
    query = create_query(alice, BrokerDatabasePython.name, objectId="ZTF18abfkwnk", candid="", max_results=1)
    feedback = run_query(alice, query).context["broker_feedback"]
    assert "did not allow BigQuery" in feedback
    assert reverse("tom_pittgoogle:oauth-connection") in feedback
    with acting_as("alice"):
        assert get_credentials("pubsub").token == connection.access_token  # what was allowed still works
        with pytest.raises(CredentialsError, match="did not allow BigQuery"):
            get_credentials("bigquery")


def test_the_redirect_uri_setting_is_what_google_is_told_and_what_the_code_is_exchanged_with(
    alice, oauth_server, settings
):
    """Behind a proxy that changes the host or scheme, the setting replaces the URL built from the request."""
    public = "https://tom.example.org/pittgoogle/oauth/callback/"
    settings.PITTGOOGLE_OAUTH_REDIRECT_URI = public
    oauth_server.client.redirect_uris = [public]  # as registered in the Google console
    oauth_server.approve_as = Account(ALICE)
    response = alice.get(reverse("tom_pittgoogle:oauth-connect"))
    assert parse_qs(urlsplit(response["Location"]).query)["redirect_uri"] == [public]
    consent = requests.get(response["Location"], allow_redirects=False, timeout=10)
    back = urlsplit(consent.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == public
    # The proxy hands the request to the TOM under its own host: the callback path is the same.
    assert alice.get(f"{back.path}?{back.query}").status_code == 302
    assert oauth_server.token_requests[-1]["redirect_uri"] == public
    assert GoogleConnection.objects.get().email == ALICE


# --- keys ---------------------------------------------------------------------------------------------------


def test_a_list_of_keys_decrypts_with_any_and_encrypts_with_the_first(alice, oauth_server, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = old
    connect(alice, oauth_server, ALICE)
    issued = oauth_server.tokens_of(ALICE)[-1]
    stored_with_old = GoogleConnection.objects.get().access_token_encrypted

    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = [new, old]  # rotation: the new key first, the old one kept
    connection = GoogleConnection.objects.get()
    assert connection.access_token == issued.access_token  # read with the old key
    assert connection.refresh_token == issued.refresh_token
    connection.store_tokens(connection.access_token, connection.expiry, connection.refresh_token)
    connection.save()
    rewritten = GoogleConnection.objects.get().access_token_encrypted
    assert rewritten != stored_with_old
    assert Fernet(new.encode()).decrypt(rewritten.encode()).decode() == issued.access_token  # written with the first
    with pytest.raises(InvalidToken):
        Fernet(old.encode()).decrypt(rewritten.encode())

    settings.PITTGOOGLE_TOKEN_ENCRYPTION_KEY = [new]  # the old key retired: what was rewritten still reads
    assert GoogleConnection.objects.get().access_token == issued.access_token


# --- the gRPC route -----------------------------------------------------------------------------------------


def test_the_stream_python_route_sends_the_connected_users_token(alice, oauth_server, no_site_credentials):
    """The gRPC channel's credentials are the user's: the metadata gRPC puts on each call (google-auth's own
    plugin, which the client library installs on its secure channel) is ``Bearer`` + the user's access token."""
    import google.auth.transport.grpc
    import google.auth.transport.requests

    from tom_pittgoogle.routes.stream_python import ConsumerStreamPython

    connect(alice, oauth_server, ALICE)
    token = GoogleConnection.objects.get().access_token
    with acting_as("alice"):
        consumer = ConsumerStreamPython("ztf-loop", touch=False)
        credentials = consumer.client._transport._credentials
    plugin = google.auth.transport.grpc.AuthMetadataPlugin(credentials, google.auth.transport.requests.Request())
    call = type("AuthMetadataContext", (), {"service_url": "https://pubsub.googleapis.com/google.pubsub.v1.Subscriber",
                                            "method_name": "StreamingPull"})
    metadata = plugin._get_authorization_headers(call)
    assert ("authorization", f"Bearer {token}") in [(key.lower(), value) for key, value in metadata]
    assert consumer.client._transport._host.startswith("pubsub.googleapis.com")
