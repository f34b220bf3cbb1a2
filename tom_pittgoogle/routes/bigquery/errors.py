"""BigQuery's and google-auth's errors said in the app's terms: what went wrong, where, and what to do.

No message carries a token or a credential; a refused refresh says to reconnect or renew the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import google.auth.exceptions
import requests
from google.api_core import exceptions as gexc

from tom_pittgoogle import conf
from tom_pittgoogle.core.credentials import credentials_error_for
from tom_pittgoogle.exceptions import (
    CredentialsError,
    EndpointError,
    PermissionDeniedError,
    PittGoogleError,
    QueryTooLargeError,
    TableNotFoundError,
)
from tom_pittgoogle.routes.bigquery.cost import NARROWING_ADVICE, format_bytes

#: What a BigQuery call may raise that :func:`translate` says in the app's terms.
CALL_ERRORS = (gexc.GoogleAPIError, google.auth.exceptions.GoogleAuthError, requests.RequestException, ConnectionError)


def translate(error: Exception, where: str, *, survey: str, project: str, max_bytes: int) -> PittGoogleError:
    """The app's error for ``error``, raised by a call about ``where`` (a table or a dataset)."""
    if isinstance(error, PittGoogleError):
        return error
    if isinstance(error, google.auth.exceptions.RefreshError):
        return credentials_error_for(error)
    reasons = {item.get("reason") for item in getattr(error, "errors", None) or [] if isinstance(item, dict)}
    if "bytesBilledLimitExceeded" in reasons:
        return QueryTooLargeError(
            f"BigQuery stopped the query on {where}: it would bill more than {format_bytes(max_bytes)} "
            f"(PITTGOOGLE_BIGQUERY_MAX_BYTES). {NARROWING_ADVICE}",
            max_bytes=max_bytes,
        )
    if isinstance(error, gexc.NotFound):
        return TableNotFoundError(
            f"BigQuery table {where} does not exist (Pitt-Google's {survey.upper()} alerts tables are "
            f"the alerts_vX_Y tables of {conf.survey_dataset(survey)}; leave the table unset to search "
            "them all)."
        )
    if isinstance(error, gexc.Forbidden):
        return PermissionDeniedError(
            f"BigQuery refused access to {where}: check that your Google account or service "
            f"account may run BigQuery jobs in project {project}."
        )
    if isinstance(error, gexc.Unauthorized):
        return CredentialsError(f"BigQuery did not accept the credentials for {where}.")
    if isinstance(error, gexc.BadRequest):
        return EndpointError(f"BigQuery rejected the query on {where}: {error.message}")
    if isinstance(error, gexc.GoogleAPICallError):
        return EndpointError(f"BigQuery error on {where}: {error.message}")
    return EndpointError(f"BigQuery is unreachable for {where} ({type(error).__name__}).")


def call(function: Callable[..., Any], *args: Any, translate_error: Callable[[Exception], PittGoogleError],
         **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, with a BigQuery or transport error raised as ``translate_error`` says."""
    try:
        return function(*args, **kwargs)
    except CALL_ERRORS as error:
        raise translate_error(error) from None
