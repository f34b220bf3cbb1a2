"""Consumer that queries Pitt-Google's BigQuery alert tables with google-cloud-bigquery.

BigQuery Python client: https://cloud.google.com/python/docs/reference/bigquery/latest

Used by :class:`~tom_pittgoogle.adapters.broker_database_python.BrokerDatabasePython`, and on its own::

    consumer = ConsumerDatabasePython()  # every ZTF alerts table: alerts_v4_02, alerts_v3_3, ... alerts_v1_8
    alerts = consumer.query_alerts({"objectId": "ZTF18abfkwnk", "max_results": 10})
    lsst = ConsumerDatabasePython(survey="lsst")  # every pitt-alert-broker.lsst.alerts_vX_Y table
    one = ConsumerDatabasePython("alerts_v3_3")  # one table of the survey's dataset

Which tables: the one named (argument, or ``PITTGOOGLE_BIGQUERY_TABLE`` / ``PITTGOOGLE_LSST_BIGQUERY_TABLE``), else
the list ``PITTGOOGLE_BIGQUERY_TABLES`` / ``PITTGOOGLE_LSST_BIGQUERY_TABLES``, else every ``alerts_vX_Y`` table of
the survey's dataset (listed once per ``PITTGOOGLE_BIGQUERY_CACHE_SECONDS``). Each table is read by a query of its
own, selecting only the columns that table has (its schema, read with ``get_table`` and cached): one UNION ALL
cannot join tables whose RECORD columns differ between schema versions, and it would bill the same bytes. The
results are merged, newest first, and cut to ``max_results``.

Cost guard: every query is dry-run first; when the tables together would scan more than
``PITTGOOGLE_BIGQUERY_MAX_BYTES``, nothing runs and :class:`~tom_pittgoogle.exceptions.QueryTooLargeError` says
how much and how to narrow the search. Every real job carries ``maximum_bytes_billed``: its share of the
setting (:func:`share_budget`), so that the jobs of one search together are never billed more than it. A time
window filters the LSST partition column ``kafkaPublishTimestamp`` and a cone the clustering columns
``healpix9``/``healpix19``, so a narrowed search reads a fraction of the table.

Every value a user gives is a query parameter; the table name, which cannot be one, is checked against
BigQuery's naming rules. With ``BIGQUERY_EMULATOR_HOST`` set the client talks to that emulator, anonymously.

The consumer joins the pieces of :mod:`tom_pittgoogle.routes.bigquery`: the table catalogue, the SQL builder,
the cost guard, the reading and merging of rows, and the translation of errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from tom_pittgoogle import conf
from tom_pittgoogle.core.attach import attach_found
from tom_pittgoogle.core.credentials import get_credentials
from tom_pittgoogle.core.pubsub import AlertCallback
from tom_pittgoogle.core.words import count
from tom_pittgoogle.exceptions import (
    ConfigurationError,
    FilterNotSupportedError,
    PittGoogleError,
    QueryTooLargeError,
    TableNotFoundError,
)
from tom_pittgoogle.routes.bigquery import cost, errors, rows, sql, tables

# The names this module has always offered (tests, the brokers and users' code import them from here).
from tom_pittgoogle.routes.bigquery.cost import MIN_BILLED_BYTES, format_bytes, share_budget
from tom_pittgoogle.routes.bigquery.rows import SkippedRow
from tom_pittgoogle.routes.bigquery.sql import (
    LSST_PUBLISH_LAG,
    MAX_HEALPIX19_PIXELS,
    TableQuery,
    healpix_cone,
)
from tom_pittgoogle.routes.bigquery.tables import ALERTS_TABLE, clear_caches, table_version, user_table_name

__all__ = [
    "ALERTS_TABLE", "LSST_PUBLISH_LAG", "MAX_HEALPIX19_PIXELS", "MIN_BILLED_BYTES", "ConsumerDatabasePython",
    "SkippedRow", "TableQuery", "clear_caches", "format_bytes", "healpix_cone", "share_budget", "table_version",
    "user_table_name",
]

logger = logging.getLogger(__name__)


class ConsumerDatabasePython:
    """Query Pitt-Google's BigQuery alert tables of one survey (or one table of them).

    With ``attach=True`` (the brokers' and the DataService's BigQuery route) the alerts a search finds are attached
    to the TOM's followed Targets they belong to, as the stream routes attach what they store.

    Constructing the consumer checks that the table (or the survey's dataset) exists; pass ``check_table=False``
    to skip that. ``max_bytes`` overrides ``PITTGOOGLE_BIGQUERY_MAX_BYTES``; ``estimate_bytes(sql, job_config)``
    replaces the dry run that estimates what a query scans (a test double, or a stricter estimate).
    """

    def __init__(
        self,
        table_name: str | None = None,
        *,
        project: str | None = None,
        client: Any = None,
        check_table: bool = True,
        survey: str | None = None,
        max_bytes: int | None = None,
        estimate_bytes: Callable[[str, Any], int] | None = None,
        attach: bool = False,
    ) -> None:
        #: Which survey's tables: it decides the default tables and the shape of the SQL.
        self.survey = survey or "ztf"
        if self.survey not in sql.SURVEY_COLUMNS:
            raise ConfigurationError(
                f"unknown survey {self.survey!r}: Pitt-Google serves {', '.join(sql.SURVEY_COLUMNS)}"
            )
        self._tables: list[str] | None = tables.configured_tables(table_name, self.survey)
        #: The dataset searched when no table is named or listed.
        self.dataset = conf.survey_dataset(self.survey)
        self.project = project or conf.user_project()
        self.timeout = float(conf.get("PITTGOOGLE_REQUEST_TIMEOUT"))
        self.max_bytes = int(max_bytes if max_bytes is not None else conf.get("PITTGOOGLE_BIGQUERY_MAX_BYTES"))
        self.estimate_bytes: Callable[[str, Any], int] = estimate_bytes or self.dry_run_bytes
        #: Rows of the last query that could not be read as alerts (skipped, logged).
        self.skipped_rows: list[SkippedRow] = []
        #: What the last query's dry runs estimated it would scan (bytes).
        self.estimated_bytes: int | None = None
        self._client = client
        #: Whether :meth:`query_alerts` attaches the alerts it finds to the followed Targets they belong to
        #: (:func:`~tom_pittgoogle.core.attach.attach_found`, the table as the route), as the stream routes do.
        self.attach = attach
        #: The table each alert of the last :meth:`query_alerts` came from, by (survey, source id).
        self.found_in: dict[tuple[str, str], str] = {}
        if check_table:
            if self._tables is not None and len(self._tables) == 1:
                self._get_table()
            else:
                self.tables  # noqa: B018  (lists the dataset: fails now if it is missing or empty)

    def __repr__(self) -> str:
        return f"<ConsumerDatabasePython {self._where()}>"

    def _where(self) -> str:
        if self._tables is not None and len(self._tables) == 1:
            return self._tables[0]
        return ", ".join(self._tables) if self._tables else f"the alerts tables of {self.dataset}"

    @property
    def tables(self) -> list[str]:
        """The tables a search reads, newest schema version first."""
        if self._tables is None:
            self._tables = self._discover_tables()
        return list(self._tables)

    @property
    def table_path(self) -> str:
        """The table a search reads (the newest, when it reads several)."""
        return self.tables[0]

    @property
    def table_name(self) -> str:
        return self.table_path.rsplit(".", 1)[-1]

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

    def _translate(self, error: Exception, where: str | None = None) -> PittGoogleError:
        return errors.translate(
            error, where or self._where(), survey=self.survey, project=self.project, max_bytes=self.max_bytes
        )

    def _call(self, function, *args, where: str | None = None, **kwargs):
        return errors.call(function, *args, translate_error=lambda error: self._translate(error, where), **kwargs)

    def _get_table(self, table_path: str | None = None):
        """Make sure the table exists and we can read it."""
        table_path = table_path or self.table_path
        return self._call(
            self.client.get_table, table_path, retry=self._retry(), timeout=self.timeout, where=table_path
        )

    def _discover_tables(self) -> list[str]:
        """Every ``alerts_vX_Y`` table of the survey's dataset, newest first (cached)."""

        def list_table_ids() -> list[str]:
            listed = self._call(
                self.client.list_tables, self.dataset, retry=self._retry(), timeout=self.timeout,
                where=f"dataset {self.dataset}",
            )
            return [item.table_id for item in self._call(list, listed, where=f"dataset {self.dataset}")]

        found = tables.alerts_tables(self.dataset, list_table_ids)
        if not found:
            raise TableNotFoundError(f"BigQuery dataset {self.dataset} has no alerts_vX_Y table.")
        logger.debug("alerts tables of %s: %s", self.dataset, ", ".join(found))
        return found

    def table_columns(self, table_path: str) -> frozenset[str]:
        """Every column path of the table (``candidate``, ``candidate.jd``...), read from its schema (cached)."""
        return tables.table_columns(table_path, lambda: self._get_table(table_path).schema)

    # -- SQL -----------------------------------------------------------------------------------------------------

    def create_sql_stmnt(self, parameters: Mapping[str, Any], table_path: str | None = None) -> tuple[str, Any]:
        """The SQL statement and job config of one table (the newest by default) for the user's parameters.

        ``objectId`` or ``candid`` (not both) selects the alerts; ``cone_ra``/``cone_dec``/``cone_radius_arcsec``,
        ``start_time``/``end_time`` and ``score_name``/``score_min`` narrow them (see
        :mod:`tom_pittgoogle.core.filters`); newest first; ``LIMIT max_results``. For LSST ``objectId`` and ``candid``
        mean the diaObjectId (or ssObjectId) and the diaSourceId. The columns selected are those the lightened
        alert and its light curve need (no cutouts), among those the table has. Every value is a query parameter.
        """
        table_path = table_path or self.table_path
        selection = sql.selection_of(parameters)
        query = self._table_query(table_path, parameters, selection)
        if query is None:
            raise FilterNotSupportedError(self._unsupported_message(selection, [table_path]))
        return query.sql, query.job_config

    def plan(self, parameters: Mapping[str, Any]) -> list[TableQuery]:
        """One query per table that can hold what ``parameters`` ask for, newest table first."""
        selection = sql.selection_of(parameters)
        searched = self.tables
        queries = [query for table in searched if (query := self._table_query(table, parameters, selection))]
        if not queries:
            raise FilterNotSupportedError(self._unsupported_message(selection, searched))
        return queries

    def _table_query(self, table: str, parameters: Mapping[str, Any], selection: Any) -> TableQuery | None:
        return sql.table_query(self.survey, table, lambda: self.table_columns(table), parameters, selection)

    def _unsupported_message(self, selection: Any, searched: list[str]) -> str:
        return sql.unsupported_message(self.survey, selection, searched, self.table_columns)

    # -- running -------------------------------------------------------------------------------------------------

    def dry_run_bytes(self, sql_text: str, job_config: Any) -> int:
        """What BigQuery estimates the query would scan (a dry run: free, nothing is read)."""
        job = self._call(
            self.client.query, sql_text, job_config=cost.dry_run_config(job_config), retry=self._retry(),
            job_retry=None, timeout=self.timeout,
        )
        return int(job.total_bytes_processed or 0)

    def check_cost(self, queries: list[TableQuery]) -> int:
        """Dry-run every query; refuse (QueryTooLargeError) when together they would scan more than allowed."""
        try:
            self.estimated_bytes = cost.check_cost(queries, self.estimate_bytes, self.max_bytes)
        except QueryTooLargeError as error:
            self.estimated_bytes = error.estimated_bytes
            raise
        return self.estimated_bytes

    def _run(self, query: TableQuery):
        return self._call(
            self.client.query,
            query.sql,
            job_config=cost.capped(query.job_config, self.max_bytes, query.max_bytes_billed),
            retry=self._retry(),
            # With any job_retry the client re-inserts a failed job for up to 600 s, whatever `retry` says.
            job_retry=None,
            timeout=self.timeout,
            where=query.table,
        )

    def unpack_query(
        self, query_job, callback: AlertCallback | None = None, lighten_alerts: bool = True, **kwargs: Any
    ) -> list[dict]:
        """The alerts of a finished query, lightened, through ``callback`` if given (None drops one).

        A row that cannot be read as an alert is logged with its table and ids, added to :attr:`skipped_rows`,
        and skipped; the other rows are returned.
        """
        self.skipped_rows = []
        return self._unpack(query_job, self._where(), callback, lighten_alerts, kwargs)

    def _unpack(self, query_job, table: str, callback, lighten_alerts: bool, kwargs: Mapping[str, Any]) -> list:
        result = self._call(query_job.result, retry=self._retry(), timeout=self.timeout, where=table)
        return rows.read_alerts(result, table, callback, lighten_alerts, kwargs, self.skipped_rows)

    def query_alerts(self, parameters: Mapping[str, Any], callback: AlertCallback | None = None) -> list[dict]:
        """Search every table for ``parameters``; the lightened alerts, newest first, at most ``max_results``.

        The cost guard runs first (:meth:`check_cost`). What the SQL selects passes the same Python filter too
        (:class:`~tom_pittgoogle.core.filters.AlertSelection`), then ``callback``.
        """
        queries = self.plan(parameters)
        self.check_cost(queries)
        selection = sql.selection_of(parameters)

        def keep(alert: Mapping[str, Any], **kwargs: Any) -> Mapping[str, Any] | None:
            if not selection.passes(alert):
                return None
            return callback(alert, **kwargs) if callback is not None else alert

        self.skipped_rows = []
        alerts: list[dict] = []
        self.found_in = {}
        for query in queries:
            found = self._unpack(self._run(query), query.table, keep, True, {})
            # Newest table first: an alert two tables hold is said to come from the newer one.
            for alert in found:
                self.found_in.setdefault(rows.alert_key(alert), query.table)
            alerts += found
        alerts = rows.merge_newest_first(alerts, int(parameters.get("max_results") or 10))
        logger.info(
            "queried %s from %s%s", count(len(alerts), "alert"), ", ".join(q.table for q in queries),
            f" ({len(self.skipped_rows)} unreadable rows skipped)" if self.skipped_rows else "",
        )
        if self.attach:
            attach_found(self.by_table(alerts))
        return alerts

    def by_table(self, alerts: list[dict]) -> dict[str, list[dict]]:
        """The alerts of the last :meth:`query_alerts` grouped by the table each came from."""
        grouped: dict[str, list[dict]] = {}
        for alert in alerts:
            grouped.setdefault(self.found_in.get(rows.alert_key(alert), self._where()), []).append(alert)
        return grouped
