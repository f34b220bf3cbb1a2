"""One place that decides which Google credentials a route uses.

Order:

1. an emulator needs none (anonymous credentials, as Google's own clients do with ``PUBSUB_EMULATOR_HOST``);
2. the *current user's* connected Google account (:class:`~tom_pittgoogle.models.GoogleConnection`, made by the
   OAuth sign-in in :mod:`tom_pittgoogle.oauth`). The current user (:mod:`tom_pittgoogle.core.acting`) is the
   one of the web request being served (set by :class:`~tom_pittgoogle.middleware.CurrentUserMiddleware`), or
   the one a command acts as
   (:func:`acting_as`, or the ``PITTGOOGLE_AS_USER`` setting / environment variable outside web requests);
3. the site's credentials: google-auth's Application Default Credentials, which read a service-account key
   from ``GOOGLE_APPLICATION_CREDENTIALS`` or the gcloud/metadata-server credentials;
4. otherwise :class:`CredentialsError`, saying where to connect a Google account.

google-auth's credential objects refresh their own access tokens; a user's refreshed token is written back to
the database, and a refresh Google refuses because the grant was revoked marks the connection broken and asks
the user to reconnect. The REST session, the Pub/Sub client and the BigQuery client all get their credentials
from :func:`get_credentials`.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from typing import Any, Literal

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
from django.views.decorators.debug import sensitive_variables
from google.auth.credentials import AnonymousCredentials, Credentials

from tom_pittgoogle import conf

# acting_as is documented here (``with tom_pittgoogle.core.credentials.acting_as("alice"): ...``).
from tom_pittgoogle.core.acting import Actor, acting_as, current_actor
from tom_pittgoogle.exceptions import CredentialsError

logger = logging.getLogger(__name__)

__all__ = [
    "SCOPES", "USER_SCOPES", "ConnectionRevokedError", "UserCredentials", "acting_as", "credentials_error_for",
    "describe_refresh_error", "emulator_for", "get_credentials", "mark_broken", "user_credentials",
]

Service = Literal["pubsub", "bigquery"]

#: Only what the routes need: Pub/Sub for both stream routes, BigQuery for the database route.
SCOPES: dict[str, tuple[str, ...]] = {
    "pubsub": ("https://www.googleapis.com/auth/pubsub",),
    "bigquery": ("https://www.googleapis.com/auth/bigquery",),
}
#: What the sign-in asks a user for: both routes' scopes, plus openid/email to show which account is connected.
USER_SCOPES: tuple[str, ...] = ("openid", "email", *SCOPES["pubsub"], *SCOPES["bigquery"])

_SERVICE_NAMES = {"pubsub": "Pub/Sub", "bigquery": "BigQuery"}


# --- the resolver -------------------------------------------------------------------------------------------


def emulator_for(service: Service) -> str | None:
    """The emulator host or URL configured for ``service``, or None when it talks to Google."""
    if service == "pubsub":
        return conf.pubsub_emulator_host()
    return conf.bigquery_emulator_endpoint()


def get_credentials(service: Service) -> Credentials:
    """Credentials for ``service``; raises :class:`CredentialsError` with what to do if there are none."""
    if emulator_for(service):
        return AnonymousCredentials()
    actor = current_actor()
    if actor is not None and actor.user is not None:
        credentials = user_credentials(service, actor)
        if credentials is not None:
            logger.debug("using the connected Google account of user %s for %s", actor.user.pk, service)
            return credentials
    try:
        credentials, _ = google.auth.default(scopes=SCOPES[service])
    except google.auth.exceptions.DefaultCredentialsError:
        raise _no_credentials_error(service, actor) from None
    logger.debug("using %s credentials for %s", type(credentials).__name__, service)
    return credentials


def _no_credentials_error(service: Service, actor: Actor | None) -> CredentialsError:
    # google-auth's message can quote the key file's content: do not pass it on.
    key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    where = (
        f"the key file named by GOOGLE_APPLICATION_CREDENTIALS ({key_file}) could not be loaded"
        if key_file
        else "GOOGLE_APPLICATION_CREDENTIALS is not set and no Application Default Credentials were found"
    )
    site = (
        "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run "
        "`gcloud auth application-default login` on the TOM's server"
    )
    if actor is not None and actor.request is not None and actor.user is not None:
        link = actor.connect_url
        if link:
            return CredentialsError(
                f"No Google credentials for {_SERVICE_NAMES[service]}: connect your Google account at {link} "
                f"and run the query again (the site has none: {where}; its administrator can {site}).",
                link=link,
            )
    return CredentialsError(
        f"No usable Google credentials for {service}: {where}. Set GOOGLE_APPLICATION_CREDENTIALS to a "
        "service-account key file, or run `gcloud auth application-default login` on the TOM's server; or "
        "connect a Google account in the TOM and run the command as that user (`manage.py pittgoogle_as "
        "USERNAME COMMAND ...` or PITTGOOGLE_AS_USER=USERNAME)."
    )


@sensitive_variables()
def user_credentials(service: Service, actor: Actor) -> Credentials | None:
    """The credentials of ``actor.user``'s connected Google account, fresh; None if they have none.

    Raises :class:`CredentialsError` (with the reconnect link) if the connection is broken or cannot serve
    ``service``.
    """
    from tom_pittgoogle.core.tokens import InvalidToken
    from tom_pittgoogle.models import GoogleConnection

    user = actor.user
    link = actor.connect_url
    connection = GoogleConnection.objects.filter(user=user).first()
    if connection is None:
        if actor.required:
            where = f" at {link}" if link else " in the TOM"
            raise CredentialsError(
                f"User {user.get_username()!r} has no connected Google account: connect one{where} first.",
                link=link,
            )
        return None
    if connection.broken:
        raise _reconnect_error(connection.broken_reason, link)
    missing = [scope for scope in SCOPES[service] if scope not in connection.scope_list]
    if missing:
        raise CredentialsError(
            f"Your connected Google account ({connection.email or 'no email'}) did not allow "
            f"{_SERVICE_NAMES[service]}: connect it again at {link or 'the Google account page'} and allow "
            f"{_SERVICE_NAMES[service]} on Google's consent screen.",
            link=link,
        )
    client_id, client_secret = conf.get("PITTGOOGLE_OAUTH_CLIENT_ID"), conf.get("PITTGOOGLE_OAUTH_CLIENT_SECRET")
    if not client_id or not client_secret:
        raise CredentialsError(
            "Google sign-in is not configured on this TOM (PITTGOOGLE_OAUTH_CLIENT_ID / "
            "PITTGOOGLE_OAUTH_CLIENT_SECRET), so connected Google accounts cannot be used: ask its administrator."
        )
    try:
        access_token, refresh_token = connection.access_token, connection.refresh_token
    except InvalidToken:
        reason = "the stored tokens cannot be decrypted (the TOM's encryption key changed)"
        mark_broken(connection.pk, reason)
        raise _reconnect_error(reason, link) from None
    _reencrypt_if_rotated(connection)

    credentials = UserCredentials(
        token=access_token or None,
        refresh_token=refresh_token,
        token_uri=conf.get("PITTGOOGLE_OAUTH_TOKEN_URL"),
        client_id=client_id,
        client_secret=client_secret,
        scopes=connection.scope_list,
        # google-auth compares expiry with a naive UTC "now".
        expiry=connection.expiry.astimezone(UTC).replace(tzinfo=None) if connection.expiry else None,
    )
    credentials.bind_connection(connection.pk, link)
    if not credentials.valid:
        # Refresh now rather than in a client library's thread, so that a revoked grant is reported here.
        try:
            credentials.refresh(google.auth.transport.requests.Request())
        except ConnectionRevokedError as error:
            raise credentials_error_for(error) from None
        except google.auth.exceptions.GoogleAuthError as error:
            # Not a refusal of the grant (that is ConnectionRevokedError): the token endpoint failed.
            reason = _refresh_error_code(error) if isinstance(error, google.auth.exceptions.RefreshError) else (
                type(error).__name__
            )
            raise CredentialsError(
                f"Your connected Google account's access token could not be renewed ({reason}): try again in a "
                f"moment, or reconnect your Google account at {link or 'the Google account page'}.",
                link=link,
            ) from None
    return credentials


def _reencrypt_if_rotated(connection: Any) -> None:
    """Key rotation: tokens decrypted with an older key are stored again under the first one, both of them."""
    if not connection.tokens_need_reencryption():
        return
    from tom_pittgoogle.models import GoogleConnection

    read = connection.refresh_token_encrypted
    connection.reencrypt_tokens()
    # Unless a refresh or a reconnection replaced the tokens meanwhile.
    GoogleConnection.objects.filter(pk=connection.pk, refresh_token_encrypted=read).update(
        access_token_encrypted=connection.access_token_encrypted,
        refresh_token_encrypted=connection.refresh_token_encrypted,
    )
    logger.info("re-encrypted the tokens of Google connection %s under the first key", connection.pk)


def _reconnect_error(reason: str, link: str | None) -> CredentialsError:
    where = f" at {link}" if link else " on the TOM's Google account page"
    return CredentialsError(
        f"Your Google account connection no longer works ({reason or 'Google refused it'}): reconnect your "
        f"Google account{where}, then run the query again.",
        link=link,
    )


class ConnectionRevokedError(google.auth.exceptions.RefreshError):
    """Google refused a user's refresh token (revoked or expired grant); the message says to reconnect."""

    def __init__(self, message: str, link: str | None) -> None:
        super().__init__(message)
        self.link = link


class UserCredentials(google.oauth2.credentials.Credentials):
    """google-auth's user credentials, bound to the stored connection they came from.

    google-auth refreshes the access token (before it expires, and again if it has); this class only writes
    the new token back, encrypted, and marks the connection broken if Google refuses the refresh token.
    """

    _connection_id: int | None = None
    _connect_url: str | None = None
    _owner_thread: int | None = None

    def bind_connection(self, connection_id: int, connect_url: str | None) -> None:
        self._connection_id = connection_id
        self._connect_url = connect_url
        self._owner_thread = threading.get_ident()

    def __repr__(self) -> str:
        return f"<UserCredentials connection={self._connection_id} valid={self.valid}>"

    @sensitive_variables()
    def refresh(self, request: Any) -> None:
        used_refresh_token = self.refresh_token
        try:
            super().refresh(request)
        except google.auth.exceptions.RefreshError as error:
            if self._connection_id is not None and _is_invalid_grant(error):
                reason = "Google refused it: the access was revoked or has expired"
                self._in_db(mark_broken, self._connection_id, reason)
                logger.warning("the Google connection %s was refused at refresh: marked broken", self._connection_id)
                message = _reconnect_error(reason, self._connect_url).args[0]
                raise ConnectionRevokedError(message, self._connect_url) from None
            raise
        if self._connection_id is not None:
            self._in_db(
                _save_refreshed, self._connection_id, used_refresh_token, self.token, self.expiry, self.refresh_token
            )
            logger.info("refreshed the access token of Google connection %s", self._connection_id)

    def _in_db(self, function: Any, *args: Any) -> None:
        """Run a database write here; from a client library's thread, close that thread's connection after."""
        if threading.get_ident() == self._owner_thread:
            function(*args)
            return
        from django.db import connections

        try:
            function(*args)
        finally:
            connections.close_all()


def _is_invalid_grant(error: google.auth.exceptions.RefreshError) -> bool:
    details = error.args[1] if len(error.args) > 1 else None
    if isinstance(details, dict):
        return details.get("error") == "invalid_grant"
    return bool(error.args) and str(error.args[0]).startswith("invalid_grant")


@sensitive_variables()
def _save_refreshed(
    connection_id: int, used_refresh_token: str, token: str, expiry: datetime | None, refresh_token: str | None
) -> None:
    from tom_pittgoogle.models import GoogleConnection

    connection = GoogleConnection.objects.filter(pk=connection_id).first()
    # Disconnected or reconnected meanwhile: the stored grant is not the one refreshed, keep it as it is.
    if connection is None or connection.refresh_token != used_refresh_token:
        return
    new_refresh_token = refresh_token if refresh_token != used_refresh_token else None
    connection.store_tokens(token, expiry.replace(tzinfo=UTC) if expiry else None, new_refresh_token)
    if connection.tokens_need_reencryption():  # the refresh token too, not only the new access token
        connection.reencrypt_tokens()
    connection.save()


def mark_broken(connection_id: int, reason: str) -> None:
    from tom_pittgoogle.models import GoogleConnection

    GoogleConnection.objects.filter(pk=connection_id).update(broken=True, broken_reason=reason[:200])


# --- errors -------------------------------------------------------------------------------------------------


def credentials_error_for(error: google.auth.exceptions.RefreshError) -> CredentialsError:
    """The :class:`CredentialsError` for a failed token refresh: what to do, never the token."""
    if isinstance(error, ConnectionRevokedError):
        return CredentialsError(str(error.args[0]), link=error.link)
    return CredentialsError(describe_refresh_error(error))


def describe_refresh_error(error: google.auth.exceptions.RefreshError) -> str:
    """A safe one-line reason for a failed token refresh (the OAuth error code, never the token)."""
    if isinstance(error, ConnectionRevokedError):
        return str(error.args[0])
    reason = _refresh_error_code(error)
    return (
        f"Google refused the credentials ({reason}). They may have expired or been revoked: "
        "renew the service-account key or run `gcloud auth application-default login` again."
    )


def _refresh_error_code(error: google.auth.exceptions.RefreshError) -> str:
    """The OAuth error code of a failed refresh (``invalid_grant``...), never the rest of the answer."""
    reason = error.args[0] if error.args else ""
    return reason.split(":", 1)[0].split(" ", 1)[0] if isinstance(reason, str) else "refresh failed"
