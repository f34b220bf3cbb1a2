"""Consumer that queries Pitt-Google's BigQuery alert tables with google-cloud-bigquery.

BigQuery Python client: https://cloud.google.com/python/docs/reference/bigquery/latest

Used by :class:`~tom_pittgoogle.broker_database_python.BrokerDatabasePython`, and on its own::

    consumer = ConsumerDatabasePython()  # Pitt-Google's current ZTF table
    sql_stmnt, job_config = consumer.create_sql_stmnt({"objectId": "ZTF18abfkwnk", "max_results": 10})
    lsst = ConsumerDatabasePython(survey="lsst")  # Pitt-Google's LSST table (pitt-alert-broker.lsst.alerts_v10_0)
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


def _table_path(table_name: str | None, survey: str = "ztf") -> str:
    """``project.dataset.table``; shorter names are in the survey's Pitt-Google project (and its survey dataset)."""
    name = table_name or conf.survey_table(survey)
    parts = name.split(".")
    if len(parts) == 1:
        name = f"{conf.survey_project(survey)}.{survey}.{name}"
    elif len(parts) == 2:
        name = f"{conf.survey_project(survey)}.{name}"
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
        survey: str | None = None,
    ) -> None:
        #: Which survey's table: it decides the default table and the shape of the SQL.
        self.survey = survey or "ztf"
        self.table_path = _table_path(table_name, self.survey)
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
                f"BigQuery table {self.table_path} does not exist (Pitt-Google's current {self.survey.upper()} "
                f"table is {conf.DEFAULTS[conf.SURVEY_SETTINGS[self.survey][1]]})."
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

        ``objectId`` or ``candid`` (not both) selects the alerts; newest first; ``LIMIT max_results``. For LSST
        they mean the diaObjectId (or ssObjectId) and the diaSourceId. The columns selected are those the
        lightened alert and its light curve need (no cutouts).
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
        if self.survey == "lsst":
            return self._lsst_sql(object_id, candid, query_parameters)
        where = ""
        if object_id is not None:
            where = "WHERE objectId = @objectId"
            query_parameters.append(bigquery.ScalarQueryParameter("objectId", "STRING", str(object_id)))
        elif candid is not None:
            where = "WHERE candid = @candid"
            query_parameters.append(bigquery.ScalarQueryParameter("candid", "INT64", int(candid)))
        sql_stmnt = (
            f"SELECT objectId, candid, candidate, prv_candidates FROM `{self.table_path}` {where} "
            "ORDER BY candidate.jd DESC LIMIT @max_results"
        )
        return sql_stmnt, bigquery.QueryJobConfig(query_parameters=query_parameters)

    def _lsst_sql(self, object_id: Any, source_id: Any, query_parameters: list) -> tuple[str, Any]:
        from google.cloud import bigquery

        def as_int(value: Any, name: str) -> int:
            try:
                return int(value)
            except (TypeError, ValueError):
                raise ConfigurationError(f"an LSST {name} is an integer, not {value!r}") from None

        where = ""
        if object_id is not None:
            # A diaSource names its diaObject or, for a solar-system source, its ssObject; packets may leave
            # diaSource.diaObjectId null and name the object in the diaObject record only.
            where = (
                "WHERE diaSource.diaObjectId = @objectId OR diaObject.diaObjectId = @objectId "
                "OR diaSource.ssObjectId = @objectId"
            )
            query_parameters.append(bigquery.ScalarQueryParameter("objectId", "INT64", as_int(object_id, "object id")))
        elif source_id is not None:
            where = "WHERE diaSource.diaSourceId = @candid"
            query_parameters.append(bigquery.ScalarQueryParameter("candid", "INT64", as_int(source_id, "diaSourceId")))
        # Columns every schema version from 7.0 has (ssSource is 8.0 on; diaSource holds the ssObjectId anyway).
        sql_stmnt = (
            f"SELECT diaSource, diaObject, prvDiaSources, prvDiaForcedSources FROM `{self.table_path}` {where} "
            "ORDER BY diaSource.midpointMjdTai DESC LIMIT @max_results"
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
