"""A real OAuth 2.0 authorization server on loopback, standing in for Google's, built with Authlib on Flask.

It issues authorization codes (PKCE required, S256), refresh tokens and short-lived access tokens, revokes
grants (RFC 7009), and serves a userinfo endpoint; it approves every authorization request at once for the
Google account named in :attr:`OAuthServer.approve_as`, as a user who clicks "Allow" would. It keeps what it
issued in memory so that tests can check what reached it.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass, field

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


@dataclass
class Account:
    """A Google account of the server (the resource owner)."""

    email: str


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    #: The scopes the user allows on the consent screen (None: every scope asked for), as Google's checkboxes.
    allowed_scopes: list[str] | None = None
    #: False: the server issues no refresh token (as Google when a user re-consents without prompt=consent).
    issues_refresh_tokens: bool = True

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        if self.allowed_scopes is None:
            return scope
        return " ".join(item for item in scope.split() if item in self.allowed_scopes)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in AUTH_METHODS

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        # Authlib asks about "refresh_token" to decide whether a code exchange issues a refresh token.
        return grant_type == "authorization_code" or (grant_type == "refresh_token" and self.issues_refresh_tokens)


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: Account
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_auth_time(self):
        return None

    def get_nonce(self):
        return None


class Clock:
    """The server's time: real time plus what a test moved it forward by (so that a token expires without a wait)."""

    offset = 0.0

    @classmethod
    def now(cls) -> float:
        return time.time() + cls.offset


@dataclass
class Token(TokenMixin):
    access_token: str
    refresh_token: str
    client_id: str
    scope: str
    user: Account
    expires_in: int
    issued_at: float = field(default_factory=lambda: Clock.now())
    revoked: bool = False

    def check_client(self, client):
        return client.get_client_id() == self.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return Clock.now() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.revoked

    def get_user(self):
        return self.user

    def get_client(self):
        return None


class OAuthServer:
    """The server and what it issued; ``url`` is its base URL while it runs."""

    def __init__(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.client = Client(client_id, client_secret, [redirect_uri])
        self.approve_as = Account("astronomer@example.org")
        #: Lifetime of new access tokens (seconds).
        self.expires_in = 3600
        self.codes: dict[str, Code] = {}
        self.tokens: list[Token] = []
        #: The form of every request to the token endpoint, as received.
        self.token_requests: list[dict] = []
        self.revocations: list[dict] = []
        self.url = ""
        self._app = self._build()
        self._server = None

    # --- what tests look at ----------------------------------------------------------------------------

    def valid_access_token(self, access_token: str) -> Token | None:
        """The token record for a bearer token a resource server would accept."""
        for token in self.tokens:
            if token.access_token == access_token and not token.is_expired() and not token.revoked:
                return token
        return None

    def tokens_of(self, email: str) -> list[Token]:
        return [token for token in self.tokens if token.user.email == email]

    def revoke_grant_of(self, email: str) -> None:
        """What a user does in their Google account's security settings: remove the TOM's access."""
        for token in self.tokens_of(email):
            token.revoked = True

    # --- the Flask app -----------------------------------------------------------------------------------

    def _build(self) -> Flask:
        app = Flask(__name__)
        server_state = self

        def query_client(client_id):
            return self.client if client_id == self.client.client_id else None

        def save_token(token_data, oauth_request):
            refresh_token = token_data.get("refresh_token")
            if not refresh_token and getattr(oauth_request, "refresh_token", None) is not None:
                # Like Google: a refresh grant returns a new access token and the refresh token stays valid.
                refresh_token = oauth_request.refresh_token.refresh_token
            self.tokens.append(Token(
                access_token=token_data["access_token"],
                refresh_token=refresh_token,
                client_id=oauth_request.client.get_client_id(),
                scope=token_data.get("scope", ""),
                user=oauth_request.user,
                expires_in=token_data["expires_in"],
            ))

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

            def save_authorization_code(self, code, oauth_request):
                data = oauth_request.payload.data
                server_state.codes[code] = Code(
                    code, oauth_request.client.get_client_id(), oauth_request.payload.redirect_uri,
                    oauth_request.scope, oauth_request.user, data.get("code_challenge"),
                    data.get("code_challenge_method"),
                )

            def query_authorization_code(self, code, client):
                item = server_state.codes.get(code)
                return item if item and item.client_id == client.get_client_id() else None

            def delete_authorization_code(self, authorization_code):
                server_state.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class RefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

            def authenticate_refresh_token(self, refresh_token):
                for token in reversed(server_state.tokens):
                    if token.refresh_token == refresh_token and not token.revoked:
                        return token
                return None

            def authenticate_user(self, refresh_token):
                return refresh_token.user

            def revoke_old_credential(self, refresh_token):
                pass  # the refresh token stays valid, as at Google

        class Revocation(RevocationEndpoint):
            CLIENT_AUTH_METHODS = AUTH_METHODS

            def query_token(self, token_string, token_type_hint):
                for token in server_state.tokens:
                    if token_string in (token.refresh_token, token.access_token):
                        return token
                return None

            def revoke_token(self, token, oauth_request):
                for other in server_state.tokens:
                    if other.refresh_token == token.refresh_token:
                        other.revoked = True

        class Validator(BearerTokenValidator):
            def authenticate_token(self, token_string):
                for token in server_state.tokens:
                    if token.access_token == token_string:
                        return token
                return None

        def expires_in(client, grant_type):
            return self.expires_in

        authorization = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        # Bearer tokens with refresh tokens; the access-token lifetime is read per token, so a test can shorten it.
        authorization.register_token_generator("default", BearerTokenGenerator(
            lambda **kwargs: generate_token(42), lambda **kwargs: generate_token(48), expires_in
        ))
        authorization.register_grant(CodeGrant, [CodeChallenge(required=True)])
        authorization.register_grant(RefreshGrant)
        authorization.register_endpoint(Revocation)
        protect = ResourceProtector()
        protect.register_token_validator(Validator())

        @app.get("/authorize")
        def authorize():
            return authorization.create_authorization_response(grant_user=self.approve_as)

        @app.post("/token")
        def token():
            self.token_requests.append(request.form.to_dict())
            return authorization.create_token_response()

        @app.post("/revoke")
        def revoke():
            self.revocations.append(request.form.to_dict())
            return authorization.create_endpoint_response("revocation")

        @app.get("/userinfo")
        @protect("email")
        def userinfo():
            return jsonify(email=current_token.user.email, email_verified=True)

        return app

    def start(self) -> None:
        # Authlib refuses plain HTTP unless told that this is a test.
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
