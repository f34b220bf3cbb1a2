"""The HTTP side of the sign-in: the authorization URL (with PKCE), the code exchange, the account's email,
and revocation. Refreshing an access token is not here: google-auth's credentials do it
(:class:`tom_pittgoogle.core.credentials.UserCredentials`).

Endpoints come from settings (Google's by default, see :mod:`tom_pittgoogle.conf`). No function here logs or
raises a token, code, verifier or secret: errors carry the OAuth error code only.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import requests
from django.views.decorators.debug import sensitive_variables

from tom_pittgoogle import conf
from tom_pittgoogle.core.credentials import USER_SCOPES
from tom_pittgoogle.exceptions import ConfigurationError, PittGoogleError

logger = logging.getLogger(__name__)


class OAuthError(PittGoogleError):
    """The authorization server refused a request or could not be reached; the message holds no secret."""


@dataclass
class Tokens:
    """What the token endpoint granted. ``repr`` hides the tokens."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expiry: datetime | None
    scopes: list[str]


@sensitive_variables()
def client_credentials() -> tuple[str, str]:
    client_id, client_secret = conf.get("PITTGOOGLE_OAUTH_CLIENT_ID"), conf.get("PITTGOOGLE_OAUTH_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise ConfigurationError(
            "Google sign-in is not configured on this TOM: its administrator sets PITTGOOGLE_OAUTH_CLIENT_ID and "
            "PITTGOOGLE_OAUTH_CLIENT_SECRET (an OAuth client of type Web application) in settings.py."
        )
    return client_id, client_secret


def is_configured() -> bool:
    return bool(conf.get("PITTGOOGLE_OAUTH_CLIENT_ID") and conf.get("PITTGOOGLE_OAUTH_CLIENT_SECRET"))


@sensitive_variables()
def new_state() -> str:
    return secrets.token_urlsafe(32)


@sensitive_variables()
def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier (RFC 7636: 43-128 characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


@sensitive_variables()
def authorization_url(redirect_uri: str, state: str, code_challenge: str) -> str:
    """Google's consent page for this TOM: offline access (a refresh token) and a consent prompt every time,
    so that Google sends a new refresh token even to a user who connected before."""
    client_id, _ = client_credentials()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(USER_SCOPES),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",
    }
    base = conf.get("PITTGOOGLE_OAUTH_AUTHORIZATION_URL")
    return f"{base}{'&' if '?' in base else '?'}{urlencode(query)}"


def _timeout() -> float:
    return float(conf.get("PITTGOOGLE_REQUEST_TIMEOUT"))


def _oauth_error_code(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", f"HTTP {response.status_code}"))[:80]
    except ValueError:
        return f"HTTP {response.status_code}"


@sensitive_variables()
def exchange_code(code: str, redirect_uri: str, code_verifier: str) -> Tokens:
    """Exchange an authorization code (with its PKCE verifier) for tokens."""
    client_id, client_secret = client_credentials()
    url = conf.get("PITTGOOGLE_OAUTH_TOKEN_URL")
    try:
        response = requests.post(
            url,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "client_secret": client_secret,
                "code_verifier": code_verifier,
            },
            headers={"Accept": "application/json"},
            timeout=_timeout(),
        )
    except requests.RequestException as error:
        raise OAuthError(f"Google's token endpoint could not be reached ({type(error).__name__}).") from None
    if response.status_code != 200:
        raise OAuthError(f"Google refused the sign-in ({_oauth_error_code(response)}).")
    try:
        body = response.json()
        access_token = body["access_token"]
    except (ValueError, KeyError):
        raise OAuthError("Google's token endpoint answered without an access token.") from None
    expires_in = body.get("expires_in")
    expiry = datetime.now(UTC) + timedelta(seconds=int(expires_in)) if expires_in else None
    # RFC 6749 5.1: no scope in the answer means the requested ones were granted.
    scopes = str(body.get("scope") or " ".join(USER_SCOPES)).split()
    return Tokens(access_token, body.get("refresh_token") or "", expiry, scopes)


@sensitive_variables()
def fetch_email(access_token: str) -> str:
    """The connected account's email address (openid/email scopes), or "" if it cannot be read."""
    url = conf.get("PITTGOOGLE_OAUTH_USERINFO_URL")
    if not url:
        return ""
    try:
        response = requests.get(url, headers={"Authorization": f"Bearer {access_token}"}, timeout=_timeout())
        if response.status_code == 200:
            return str(response.json().get("email") or "")[:320]
        logger.info("the userinfo endpoint answered HTTP %s: the account's email is not shown", response.status_code)
    except (requests.RequestException, ValueError) as error:
        logger.info("the userinfo endpoint failed (%s): the account's email is not shown", type(error).__name__)
    return ""


@sensitive_variables()
def revoke(token: str) -> bool:
    """Revoke ``token`` (a refresh token revokes the whole grant at Google); True if the server accepted."""
    client_id, client_secret = client_credentials()
    url = conf.get("PITTGOOGLE_OAUTH_REVOCATION_URL")
    try:
        response = requests.post(
            url,
            # RFC 7009 asks the client to authenticate; Google accepts the token alone, and ignores the rest.
            data={"token": token, "token_type_hint": "refresh_token", "client_id": client_id,
                  "client_secret": client_secret},
            timeout=_timeout(),
        )
    except requests.RequestException as error:
        logger.warning("token revocation failed: %s", type(error).__name__)
        return False
    if response.status_code != 200:
        logger.warning("token revocation refused: %s", _oauth_error_code(response))
        return False
    return True
