"""Credentials: none, wrong or expired ones give a clear error that quotes no secret; emulators need none.

Google's token endpoint and APIs are replaced by a small HTTP server on loopback, so that google-auth's real
service-account flow (a signed JWT exchanged for an access token) runs and is refused as Google refuses it.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tom_pittgoogle.adapters.broker_base import BrokerQueryError
from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.core.credentials import get_credentials
from tom_pittgoogle.exceptions import CredentialsError
from tom_pittgoogle.routes.database_python import ConsumerDatabasePython
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest


class RefusingGoogle(BaseHTTPRequestHandler):
    """Answers every token request with invalid_grant and counts the API calls that get through."""

    api_calls: list[str] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path == "/token":
            self._answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        else:
            RefusingGoogle.api_calls.append(self.path)
            self._answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})

    do_GET = do_POST  # noqa: N815
    do_PUT = do_POST  # noqa: N815

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_google():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingGoogle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    RefusingGoogle.api_calls = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def no_google_environment(monkeypatch, tmp_path):
    """No emulator, no key, no gcloud credentials, and no probe of a cloud metadata server."""
    for name in ("PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NO_GCE_CHECK", "True")


@pytest.fixture
def wrong_key_file(tmp_path, refusing_google, monkeypatch, no_google_environment):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "pitt-broker-user-project",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "tom@pitt-broker-user-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{refusing_google}/token",
    }
    path = tmp_path / "key.json"
    path.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return pem


def secrets_of(pem: str) -> list[str]:
    body = "".join(pem.strip().splitlines()[1:-1])
    return [body[i:i + 40] for i in range(0, len(body) - 40, 200)] + ["0123456789abcdef"]


def test_without_any_credentials_the_error_says_what_to_set(no_google_environment):
    with pytest.raises(CredentialsError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        get_credentials("pubsub")


def test_without_credentials_the_results_page_gets_the_message(no_google_environment, settings, db):
    # db: a pull first reads which subscriptions this TOM's ingesters use (the heartbeat table).
    with pytest.raises(BrokerQueryError, match="gcloud auth application-default login"):
        BrokerStreamRest().fetch_alerts({"subscription_name": "ztf-loop", "max_results": 1})


def test_an_unreadable_key_file_is_named_but_not_quoted(no_google_environment, tmp_path, monkeypatch):
    path = tmp_path / "key.json"
    path.write_text('{"type": "service_account", "private_key": "SECRET-MATERIAL"}')
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    with pytest.raises(CredentialsError) as raised:
        get_credentials("bigquery")
    assert str(path) in str(raised.value) and "SECRET-MATERIAL" not in str(raised.value)


def test_refused_credentials_on_the_rest_route_are_a_clear_error_without_secrets(
    wrong_key_file, refusing_google, settings, caplog
):
    settings.PITTGOOGLE_PUBSUB_ENDPOINT = refusing_google
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CredentialsError, match=r"refused the credentials \(invalid_grant\)") as raised:
        ConsumerStreamRest("ztf-loop")
    assert RefusingGoogle.api_calls == []  # no API call without a token
    text = str(raised.value) + caplog.text
    assert not any(secret in text for secret in secrets_of(wrong_key_file))


def test_refused_credentials_on_the_bigquery_route_are_a_clear_error(wrong_key_file, refusing_google, settings):
    settings.PITTGOOGLE_BIGQUERY_ENDPOINT = refusing_google
    settings.PITTGOOGLE_REQUEST_TIMEOUT = 5
    with pytest.raises(CredentialsError, match="invalid_grant") as raised:
        ConsumerDatabasePython()
    assert not any(secret in str(raised.value) for secret in secrets_of(wrong_key_file))


def test_with_an_emulator_no_credentials_are_needed(no_google_environment, monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "http://127.0.0.1:9050")
    from google.auth.credentials import AnonymousCredentials

    assert isinstance(get_credentials("pubsub"), AnonymousCredentials)
    assert isinstance(get_credentials("bigquery"), AnonymousCredentials)
