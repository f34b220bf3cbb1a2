"""One place that decides which Google credentials a route uses.

Order: an emulator needs none (anonymous credentials, as Google's own clients do with
``PUBSUB_EMULATOR_HOST``); otherwise google-auth's Application Default Credentials, which read a
service-account key from ``GOOGLE_APPLICATION_CREDENTIALS`` or the gcloud/metadata-server credentials.
google-auth's credential objects refresh their own access tokens, so nothing here handles expiry.

The REST session, the Pub/Sub client and the BigQuery client all get their credentials from
:func:`get_credentials`, so a new source (a TOM user's own Google account) is added here once.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

import google.auth
import google.auth.exceptions
from google.auth.credentials import AnonymousCredentials, Credentials

from . import conf
from .exceptions import CredentialsError

logger = logging.getLogger(__name__)

Service = Literal["pubsub", "bigquery"]

#: Only what the routes need: Pub/Sub for both stream routes, BigQuery for the database route.
SCOPES: dict[str, tuple[str, ...]] = {
    "pubsub": ("https://www.googleapis.com/auth/pubsub",),
    "bigquery": ("https://www.googleapis.com/auth/bigquery",),
}


def emulator_for(service: Service) -> str | None:
    """The emulator host or URL configured for ``service``, or None when it talks to Google."""
    if service == "pubsub":
        return conf.pubsub_emulator_host()
    return conf.bigquery_emulator_endpoint()


def get_credentials(service: Service) -> Credentials:
    """Credentials for ``service``; raises :class:`CredentialsError` with what to do if there are none."""
    if emulator_for(service):
        return AnonymousCredentials()
    try:
        credentials, _ = google.auth.default(scopes=SCOPES[service])
    except google.auth.exceptions.DefaultCredentialsError:
        # google-auth's message can quote the key file's content: do not pass it on.
        key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        where = (
            f"the key file named by GOOGLE_APPLICATION_CREDENTIALS ({key_file}) could not be loaded"
            if key_file
            else "GOOGLE_APPLICATION_CREDENTIALS is not set and no Application Default Credentials were found"
        )
        raise CredentialsError(
            f"No usable Google credentials for {service}: {where}. Set GOOGLE_APPLICATION_CREDENTIALS to a "
            "service-account key file, or run `gcloud auth application-default login` on the TOM's server."
        ) from None
    logger.debug("using %s credentials for %s", type(credentials).__name__, service)
    return credentials


def describe_refresh_error(error: google.auth.exceptions.RefreshError) -> str:
    """A safe one-line reason for a failed token refresh (the OAuth error code, never the token)."""
    reason = error.args[0] if error.args else ""
    if isinstance(reason, str):
        reason = reason.split(":", 1)[0].split(" ", 1)[0]
    else:
        reason = "refresh failed"
    return (
        f"Google refused the credentials ({reason}). They may have expired or been revoked: "
        "renew the service-account key or run `gcloud auth application-default login` again."
    )
