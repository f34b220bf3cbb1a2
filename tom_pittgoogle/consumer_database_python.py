"""Consumer that queries Pitt-Google's BigQuery alert tables with google-cloud-bigquery.

BigQuery Python client: https://cloud.google.com/python/docs/reference/bigquery/latest

Used by :class:`~tom_pittgoogle.broker_database_python.BrokerDatabasePython`, and on its own::

    consumer = ConsumerDatabasePython()  # Pitt-Google's current ZTF table
    sql_stmnt, job_config = consumer.create_sql_stmnt({"objectId": "ZTF18abfkwnk", "max_results": 10})
    query_job = consumer.client.query(sql_stmnt, job_config=job_config)
    alerts = consumer.unpack_query(query_job)

Every value a user gives is a query parameter; the table name, which cannot be one, is checked against
BigQuery's naming rules. With ``BIGQUERY_EMULATOR_HOST`` set the client talks to that emulator, anonymously.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import google.auth.exceptions
import requests
from google.api_core import exceptions as gexc

from . import conf
from .alerts import lighten_alert
from .credentials import credentials_error_for, get_credentials
from .exceptions import (
    ConfigurationError,
    CredentialsError,
    EndpointError,
    PermissionDeniedError,
    PittGoogleError,
    TableNotFoundError,
)
from .pubsub import AlertCallback

logger = logging.getLogger(__name__)

_TABLE_PATH = re.compile(r"^[A-Za-z0-9\-]+(?::[A-Za-z0-9\-]+)?\.[A-Za-z0-9_]+\.[A-Za-z0-9_\-]+$")


def _table_path(table_name: str | None) -> str:
    """``project.dataset.table``; shorter names are in Pitt-Google's project (and its ``ztf`` dataset)."""
    name = table_name or conf.get("PITTGOOGLE_BIGQUERY_TABLE")
    parts = name.split(".")
    if len(parts) == 1:
        name = f"{conf.get('PITTGOOGLE_PROJECT_ID')}.ztf.{name}"
    elif len(parts) == 2:
        name = f"{conf.get('PITTGOOGLE_PROJECT_ID')}.{name}"
    if not _TABLE_PATH.match(name):
        raise ConfigurationError(f"{name!r} is not a BigQuery table name (project.dataset.table)")
    return name


class ConsumerDatabasePython:
    """Query a Pitt-Google BigQuery table of alerts.

    Constructing the consumer checks that the table exists; pass ``check_table=False`` to skip that.
    """

    def __init__(
        self,
        table_name: str | None = None,
        *,
        project: str | None = None,
        client: Any = None,
        check_table: bool = True,
    ) -> None:
        self.table_path = _table_path(table_name)
        self.table_name = self.table_path.rsplit(".", 1)[-1]
        self.project = project or conf.user_project()
        self.timeout = float(conf.get("PITTGOOGLE_REQUEST_TIMEOUT"))
        self._client = client
        if check_table:
            self._get_table()

    def __repr__(self) -> str:
        return f"<ConsumerDatabasePython {self.table_path}>"

    @property
    def client(self):
        """The ``bigquery.Client`` (created on first use; emulator-aware)."""
        if self._client is None:
            from google.api_core.client_options import ClientOptions
            from google.cloud import bigquery

            endpoint = conf.bigquery_emulator_endpoint() or conf.get("PITTGOOGLE_BIGQUERY_ENDPOINT")
            self._client = bigquery.Client(
                project=self.project,
                credentials=get_credentials("bigquery"),
                client_options=ClientOptions(api_endpoint=endpoint) if endpoint else None,
            )
        return self._client

    def _retry(self):
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        # The library retries for up to 600 s by default; a person is waiting on a page.
        return DEFAULT_RETRY.with_timeout(self.timeout)

    def _translate(self, error: Exception) -> PittGoogleError:
        if isinstance(error, PittGoogleError):
            return error
        if isinstance(error, google.auth.exceptions.RefreshError):
            return credentials_error_for(error)
        if isinstance(error, gexc.NotFound):
            return TableNotFoundError(
                f"BigQuery table {self.table_path} does not exist (Pitt-Google's current ZTF table is "
                f"{conf.DEFAULTS['PITTGOOGLE_BIGQUERY_TABLE']})."
            )
        if isinstance(error, gexc.Forbidden):
            return PermissionDeniedError(
                f"BigQuery refused access to {self.table_path}: check that your Google account or service "
                f"account may run BigQuery jobs in project {self.project}."
            )
        if isinstance(error, gexc.Unauthorized):
            return CredentialsError(f"BigQuery did not accept the credentials for {self.table_path}.")
        if isinstance(error, gexc.BadRequest):
            return EndpointError(f"BigQuery rejected the query on {self.table_path}: {error.message}")
        if isinstance(error, gexc.GoogleAPICallError):
            return EndpointError(f"BigQuery error on {self.table_path}: {error.message}")
        return EndpointError(f"BigQuery is unreachable for {self.table_path} ({type(error).__name__}).")

    def _call(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (
            gexc.GoogleAPIError,
            google.auth.exceptions.GoogleAuthError,
            requests.RequestException,
            ConnectionError,
        ) as error:
            raise self._translate(error) from None

    def _get_table(self):
        """Make sure the table exists and we can read it."""
        return self._call(self.client.get_table, self.table_path, retry=self._retry(), timeout=self.timeout)

    def create_sql_stmnt(self, parameters: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL statement and job config for the user's parameters (every value a query parameter).

        ``objectId`` or ``candid`` (not both) selects the alerts; newest first; ``LIMIT max_results``.
        """
        from google.cloud import bigquery

        object_id = parameters.get("objectId") or None
        candid = parameters.get("candid")
        candid = None if candid in (None, "") else candid
        if object_id is not None and candid is not None:
            raise ConfigurationError("Give either objectId or candid, not both.")
        max_results = int(parameters.get("max_results") or 10)
        if max_results < 1:
            raise ConfigurationError("max_results must be at least 1")

        query_parameters = [bigquery.ScalarQueryParameter("max_results", "INT64", max_results)]
        where = ""
        if object_id is not None:
            where = "WHERE objectId = @objectId"
            query_parameters.append(bigquery.ScalarQueryParameter("objectId", "STRING", str(object_id)))
        elif candid is not None:
            where = "WHERE candid = @candid"
            query_parameters.append(bigquery.ScalarQueryParameter("candid", "INT64", int(candid)))
        sql_stmnt = (
            f"SELECT objectId, candid, candidate FROM `{self.table_path}` {where} "
            "ORDER BY candidate.jd DESC LIMIT @max_results"
        )
        return sql_stmnt, bigquery.QueryJobConfig(query_parameters=query_parameters)

    def unpack_query(
        self, query_job, callback: AlertCallback | None = None, lighten_alerts: bool = True, **kwargs: Any
    ) -> list[dict]:
        """The alerts of a finished query, lightened, through ``callback`` if given (None drops one)."""
        rows = self._call(query_job.result, retry=self._retry(), timeout=self.timeout)
        alerts = []
        for row in rows:
            alert = dict(row.items())
            if lighten_alerts:
                alert = lighten_alert(alert)
            if callback is not None:
                alert = callback(alert, **kwargs)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def query_alerts(self, parameters: Mapping[str, Any], callback: AlertCallback | None = None) -> list[dict]:
        """Run the query for ``parameters`` and return the lightened alerts."""
        sql_stmnt, job_config = self.create_sql_stmnt(parameters)
        query_job = self._call(
            self.client.query,
            sql_stmnt,
            job_config=job_config,
            retry=self._retry(),
            # With any job_retry the client re-inserts a failed job for up to 600 s, whatever `retry` says.
            job_retry=None,
            timeout=self.timeout,
        )
        alerts = self.unpack_query(query_job, callback=callback)
        logger.info("queried %d alerts from %s", len(alerts), self.table_path)
        return alerts
