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
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import requests
from google.api_core import exceptions as gexc

from tom_pittgoogle import conf
from tom_pittgoogle.core.alerts import SURVEYS, lighten_alert
from tom_pittgoogle.core.credentials import credentials_error_for, get_credentials
from tom_pittgoogle.core.filters import AlertSelection, ConeFilter, TimeWindow
from tom_pittgoogle.core.pubsub import AlertCallback
from tom_pittgoogle.core.words import count
from tom_pittgoogle.exceptions import (
    ConfigurationError,
    CredentialsError,
    EndpointError,
    FilterNotSupportedError,
    PermissionDeniedError,
    PittGoogleError,
    QueryTooLargeError,
    TableNotFoundError,
)

logger = logging.getLogger(__name__)

_TABLE_PATH = re.compile(r"^[A-Za-z0-9\-]+(?::[A-Za-z0-9\-]+)?\.[A-Za-z0-9_]+\.[A-Za-z0-9_\-]+$")
#: Pitt-Google's alerts tables, one per schema version: alerts_v4_02, alerts_v11_1...
ALERTS_TABLE = re.compile(r"^alerts_v(\d+)_(\d+)$")
#: A table a user may name in a form: one of the survey's dataset.
_USER_TABLE_NAME = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
#: LSST alerts are published after their exposure; a time window reads the partitions of kafkaPublishTimestamp
#: from its start to this long after its end (alerts published later than that are not found).
LSST_PUBLISH_LAG = dt.timedelta(days=2)
#: A cone lists its covering healpix19 pixels only up to this many (wider cones filter on healpix9 alone).
MAX_HEALPIX19_PIXELS = 2000
_DEGREE = math.pi / 180.0

#: What each survey's query selects and filters on (the columns the lightened alert and its light curve need).
_COLUMNS = {
    "ztf": {
        "select": ("objectId", "candid", "candidate", "prv_candidates"),
        "time": "candidate.jd",
        "ra": "candidate.ra",
        "dec": "candidate.dec",
    },
    "lsst": {
        # Columns of every schema version from 7.0 (ssSource is 8.0 on; diaSource holds the ssObjectId anyway).
        "select": ("diaSource", "diaObject", "prvDiaSources", "prvDiaForcedSources"),
        "time": "diaSource.midpointMjdTai",
        "ra": "diaSource.ra",
        "dec": "diaSource.dec",
    },
}

_cache_lock = threading.Lock()
_tables_cache: dict[str, tuple[float, list[str]]] = {}
_schema_cache: dict[str, tuple[float, frozenset[str]]] = {}


def clear_caches() -> None:
    """Forget the listed tables and the tables' columns (they are read again on next use)."""
    with _cache_lock:
        _tables_cache.clear()
        _schema_cache.clear()


def _cached(cache: dict, key: str, load: Callable[[], Any]) -> Any:
    # Keyed on the endpoint too: an emulator's tables are not BigQuery's.
    key = f"{conf.bigquery_emulator_endpoint() or conf.get('PITTGOOGLE_BIGQUERY_ENDPOINT') or ''} {key}"
    now = time.monotonic()
    with _cache_lock:
        hit = cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
    value = load()
    if value:  # an empty dataset is asked again next time: its first table may be on its way
        with _cache_lock:
            cache[key] = (now + float(conf.get("PITTGOOGLE_BIGQUERY_CACHE_SECONDS")), value)
    return value


def table_version(table_path: str) -> tuple[int, int]:
    """(major, minor) of an ``alerts_vX_Y`` table; (-1, -1) for another name (sorted last)."""
    match = ALERTS_TABLE.match(table_path.rsplit(".", 1)[-1])
    return (int(match.group(1)), int(match.group(2))) if match else (-1, -1)


def _newest_first(tables: Iterable[str]) -> list[str]:
    return sorted(dict.fromkeys(tables), key=lambda path: (table_version(path), path), reverse=True)


def _table_path(table_name: str | None, survey: str = "ztf") -> str:
    """``project.dataset.table``; a bare name is in the survey's dataset, ``dataset.table`` in its project."""
    name = table_name or conf.survey_table(survey)
    if not name:
        raise ConfigurationError(f"no BigQuery table named for {survey.upper()}")
    parts = name.split(".")
    if len(parts) == 1:
        name = f"{conf.survey_dataset(survey)}.{name}"
    elif len(parts) == 2:
        name = f"{conf.survey_project(survey)}.{name}"
    if not _TABLE_PATH.match(name):
        raise ConfigurationError(f"{name!r} is not a BigQuery table name (project.dataset.table)")
    return name


def user_table_name(value: Any) -> str | None:
    """A table a user named (form field or query parameter ``table_name``): a table of the survey's dataset."""
    if value in (None, ""):
        return None
    name = str(value).strip()
    if not _USER_TABLE_NAME.match(name):
        raise ConfigurationError(
            f"{name!r} is not a table of Pitt-Google's dataset: give a table name such as alerts_v4_02 "
            "(letters, digits and underscores)."
        )
    return name


def _schema_paths(fields: Iterable[Any], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for field in fields:
        path = f"{prefix}{field.name}"
        paths.add(path)
        if field.fields:
            paths |= _schema_paths(field.fields, f"{path}.")
    return paths


def format_bytes(count: int) -> str:
    """A byte count in decimal units, as Google bills them (1 GB = 10^9 bytes)."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


@dataclass
class TableQuery:
    """One table's query: its SQL and job config (every value a query parameter)."""

    table: str
    sql: str
    job_config: Any
    #: This query's share of the search's cost guard (set by :meth:`ConsumerDatabasePython.check_cost`); None:
    #: the whole of it (a query run on its own).
    max_bytes_billed: int | None = None


@dataclass(frozen=True)
class SkippedRow:
    """A row of a result that could not be read as an alert: skipped, and reported."""

    table: str
    ids: str
    reason: str


class ConsumerDatabasePython:
    """Query Pitt-Google's BigQuery alert tables of one survey (or one table of them).

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
    ) -> None:
        #: Which survey's tables: it decides the default tables and the shape of the SQL.
        self.survey = survey or "ztf"
        if self.survey not in _COLUMNS:
            raise ConfigurationError(f"unknown survey {self.survey!r}: Pitt-Google serves {', '.join(_COLUMNS)}")
        named = table_name or conf.survey_table(self.survey)
        listed = None if named else conf.survey_tables(self.survey)
        self._tables: list[str] | None = None
        if named:
            self._tables = [_table_path(named, self.survey)]
        elif listed:
            self._tables = _newest_first(_table_path(name, self.survey) for name in listed)
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
        where = where or self._where()
        if isinstance(error, PittGoogleError):
            return error
        if isinstance(error, google.auth.exceptions.RefreshError):
            return credentials_error_for(error)
        reasons = {item.get("reason") for item in getattr(error, "errors", None) or [] if isinstance(item, dict)}
        if "bytesBilledLimitExceeded" in reasons:
            return QueryTooLargeError(
                f"BigQuery stopped the query on {where}: it would bill more than {format_bytes(self.max_bytes)} "
                f"(PITTGOOGLE_BIGQUERY_MAX_BYTES). {self._narrowing_advice()}",
                max_bytes=self.max_bytes,
            )
        if isinstance(error, gexc.NotFound):
            return TableNotFoundError(
                f"BigQuery table {where} does not exist (Pitt-Google's {self.survey.upper()} alerts tables are "
                f"the alerts_vX_Y tables of {conf.survey_dataset(self.survey)}; leave the table unset to search "
                "them all)."
            )
        if isinstance(error, gexc.Forbidden):
            return PermissionDeniedError(
                f"BigQuery refused access to {where}: check that your Google account or service "
                f"account may run BigQuery jobs in project {self.project}."
            )
        if isinstance(error, gexc.Unauthorized):
            return CredentialsError(f"BigQuery did not accept the credentials for {where}.")
        if isinstance(error, gexc.BadRequest):
            return EndpointError(f"BigQuery rejected the query on {where}: {error.message}")
        if isinstance(error, gexc.GoogleAPICallError):
            return EndpointError(f"BigQuery error on {where}: {error.message}")
        return EndpointError(f"BigQuery is unreachable for {where} ({type(error).__name__}).")

    def _call(self, function, *args, where: str | None = None, **kwargs):
        try:
            return function(*args, **kwargs)
        except (
            gexc.GoogleAPIError,
            google.auth.exceptions.GoogleAuthError,
            requests.RequestException,
            ConnectionError,
        ) as error:
            raise self._translate(error, where) from None

    def _get_table(self, table_path: str | None = None):
        """Make sure the table exists and we can read it."""
        table_path = table_path or self.table_path
        return self._call(
            self.client.get_table, table_path, retry=self._retry(), timeout=self.timeout, where=table_path
        )

    def _discover_tables(self) -> list[str]:
        """Every ``alerts_vX_Y`` table of the survey's dataset, newest first (cached)."""

        def list_tables() -> list[str]:
            listed = self._call(
                self.client.list_tables, self.dataset, retry=self._retry(), timeout=self.timeout,
                where=f"dataset {self.dataset}",
            )
            names = [item.table_id for item in self._call(list, listed, where=f"dataset {self.dataset}")]
            return _newest_first(f"{self.dataset}.{name}" for name in names if ALERTS_TABLE.match(name))

        tables = _cached(_tables_cache, self.dataset, list_tables)
        if not tables:
            raise TableNotFoundError(f"BigQuery dataset {self.dataset} has no alerts_vX_Y table.")
        logger.debug("alerts tables of %s: %s", self.dataset, ", ".join(tables))
        return tables

    def table_columns(self, table_path: str) -> frozenset[str]:
        """Every column path of the table (``candidate``, ``candidate.jd``...), read from its schema (cached)."""
        return _cached(_schema_cache, table_path, lambda: frozenset(_schema_paths(self._get_table(table_path).schema)))

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
        query = self._table_query(table_path, parameters, self._selection(parameters))
        if query is None:
            raise FilterNotSupportedError(self._unsupported_message(self._selection(parameters), [table_path]))
        return query.sql, query.job_config

    def plan(self, parameters: Mapping[str, Any]) -> list[TableQuery]:
        """One query per table that can hold what ``parameters`` ask for, newest table first."""
        selection = self._selection(parameters)
        tables = self.tables
        queries = [query for table in tables if (query := self._table_query(table, parameters, selection))]
        if not queries:
            raise FilterNotSupportedError(self._unsupported_message(selection, tables))
        return queries

    @staticmethod
    def _selection(parameters: Mapping[str, Any]) -> AlertSelection:
        try:
            return AlertSelection.from_parameters(parameters)
        except ValueError as error:
            raise ConfigurationError(str(error)) from None

    def _unsupported_message(self, selection: AlertSelection, tables: list[str]) -> str:
        if selection.predicted_class is not None:
            return (
                "Pitt-Google's alerts tables hold no classifier results, so a BigQuery search cannot filter on "
                "predicted_class: use it on a classifier stream (e.g. lsst-supernnova, ztf-SuperNNova)."
            )
        score = selection.score.name if selection.score else ""
        names = sorted(
            name for name, paths in SURVEYS[self.survey].scores.items()
            if any(self._column_of(paths, table) for table in tables)
        )
        return (
            f"The {self.survey.upper()} alerts tables have no score {score!r}"
            + (f" (they have {', '.join(names)})" if names else "")
            + ": classifier scores are on the classifier streams."
        )

    def _column_of(self, paths: str, table: str) -> str | None:
        """The first of ``a.b|c.d`` that the table has."""
        columns = self.table_columns(table)
        return next((path for path in paths.split("|") if path in columns), None)

    def _table_query(
        self, table: str, parameters: Mapping[str, Any], selection: AlertSelection
    ) -> TableQuery | None:
        """The query of one table, or None when the table cannot hold an alert that passes (no such score)."""
        from google.cloud import bigquery

        object_id = parameters.get("objectId") or None
        candid = parameters.get("candid")
        candid = None if candid in (None, "") else candid
        if object_id is not None and candid is not None:
            raise ConfigurationError("Give either objectId or candid, not both.")
        try:
            max_results = int(parameters.get("max_results") or 10)
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"max_results must be a whole number, not {parameters.get('max_results')!r}"
            ) from None
        if max_results < 1:
            raise ConfigurationError("max_results must be at least 1")
        if selection.predicted_class is not None:
            return None

        columns = self.table_columns(table)
        shape = _COLUMNS[self.survey]
        params = [bigquery.ScalarQueryParameter("max_results", "INT64", max_results)]
        where: list[str] = []
        if self.survey == "lsst":
            where += self._lsst_ids(object_id, candid, columns, params)
        else:
            where += self._ztf_ids(object_id, candid, columns, params)
        if selection.cone is not None:
            where += self._cone_sql(selection.cone, shape["ra"], shape["dec"], columns, params)
        if selection.time is not None:
            where += self._time_sql(selection.time, shape["time"], columns, params)
        if selection.score is not None:
            paths = SURVEYS[self.survey].scores.get(selection.score.name)
            column = self._column_of(paths, table) if paths else None
            if column is None:
                return None
            where.append(f"{column} >= @score_min")
            params.append(bigquery.ScalarQueryParameter("score_min", "FLOAT64", selection.score.minimum))

        select = ", ".join(name for name in shape["select"] if name in columns)
        sql = (
            f"SELECT {select} FROM `{table}`"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {shape['time']} DESC LIMIT @max_results"
        )
        return TableQuery(table, sql, bigquery.QueryJobConfig(query_parameters=params))

    @staticmethod
    def _ztf_ids(object_id: Any, candid: Any, columns: frozenset[str], params: list) -> list[str]:
        from google.cloud import bigquery

        if object_id is not None:
            params.append(bigquery.ScalarQueryParameter("objectId", "STRING", str(object_id)))
            return ["objectId = @objectId"]
        if candid is not None:
            try:
                value = int(candid)
            except (TypeError, ValueError):
                raise ConfigurationError(f"a ZTF candid is an integer, not {candid!r}") from None
            params.append(bigquery.ScalarQueryParameter("candid", "INT64", value))
            return [f"{'candid' if 'candid' in columns else 'candidate.candid'} = @candid"]
        return []

    @staticmethod
    def _lsst_ids(object_id: Any, source_id: Any, columns: frozenset[str], params: list) -> list[str]:
        from google.cloud import bigquery

        def as_int(value: Any, name: str) -> int:
            try:
                return int(value)
            except (TypeError, ValueError):
                raise ConfigurationError(f"an LSST {name} is an integer, not {value!r}") from None

        if object_id is not None:
            # A diaSource names its diaObject or, for a solar-system source, its ssObject; packets may leave
            # diaSource.diaObjectId null and name the object in the diaObject record only.
            params.append(bigquery.ScalarQueryParameter("objectId", "INT64", as_int(object_id, "object id")))
            paths = ("diaSource.diaObjectId", "diaObject.diaObjectId", "diaSource.ssObjectId")
            return ["(" + " OR ".join(f"{path} = @objectId" for path in paths if path in columns) + ")"]
        if source_id is not None:
            params.append(bigquery.ScalarQueryParameter("candid", "INT64", as_int(source_id, "diaSourceId")))
            return ["diaSource.diaSourceId = @candid"]
        return []

    @staticmethod
    def _cone_sql(cone: ConeFilter, ra: str, dec: str, columns: frozenset[str], params: list) -> list[str]:
        """A box on ra/dec, the covering HEALPix pixels where the table has them, and the exact distance."""
        from google.cloud import bigquery

        def number(name: str, value: float) -> None:
            params.append(bigquery.ScalarQueryParameter(name, "FLOAT64", value))

        where = [f"{dec} BETWEEN @cone_dec_min AND @cone_dec_max"]
        number("cone_dec_min", cone.dec - cone.radius_deg)
        number("cone_dec_max", cone.dec + cone.radius_deg)
        widest = max(abs(cone.dec - cone.radius_deg), abs(cone.dec + cone.radius_deg))
        if widest < 90:
            half_width = math.degrees(math.asin(min(1.0, math.sin(math.radians(cone.radius_deg))
                                                    / math.cos(math.radians(widest)))))
            if half_width < 180:
                low, high = (cone.ra - half_width) % 360, (cone.ra + half_width) % 360
                joint = "AND" if low <= high else "OR"  # a box across ra = 0 is two ranges
                where.append(f"({ra} >= @cone_ra_min {joint} {ra} <= @cone_ra_max)")
                number("cone_ra_min", low)
                number("cone_ra_max", high)
        if "healpix9" in columns:
            for order, column in ((9, "healpix9"), (19, "healpix19")):
                pixels = healpix_cone(cone, order, MAX_HEALPIX19_PIXELS if order == 19 else None)
                if pixels is None or column not in columns:
                    continue
                where.append(f"{column} IN UNNEST(@cone_{column})")
                params.append(bigquery.ArrayQueryParameter(f"cone_{column}", "INT64", pixels))
        # The haversine of filters.haversine, in SQL (BigQuery has no RADIANS(): @deg is pi/180).
        where.append(
            f"POW(SIN(({dec} - @cone_dec) * @deg / 2), 2) + COS({dec} * @deg) * COS(@cone_dec * @deg) "
            f"* POW(SIN(({ra} - @cone_ra) * @deg / 2), 2) <= @cone_haversine"
        )
        number("cone_ra", cone.ra)
        number("cone_dec", cone.dec)
        number("deg", _DEGREE)
        number("cone_haversine", cone.haversine_max)
        return where

    def _time_sql(self, window: TimeWindow, time_column: str, columns: frozenset[str], params: list) -> list[str]:
        from google.cloud import bigquery

        where = []
        if self.survey == "ztf":  # candidate.jd is UTC, the scale of the window
            bounds = (window.start_jd, window.end_jd)
        else:  # diaSource.midpointMjdTai is a TAI MJD
            bounds = tuple(None if when is None else _mjd_tai(when) for when in (window.start, window.end))
        for bound, operator, name in ((bounds[0], ">=", "start"), (bounds[1], "<", "end")):
            if bound is not None:
                where.append(f"{time_column} {operator} @{name}_time")
                params.append(bigquery.ScalarQueryParameter(f"{name}_time", "FLOAT64", bound))
        if "kafkaPublishTimestamp" in columns:
            # The partition column: an alert is published after its exposure, so the window's partitions are
            # those from its start to LSST_PUBLISH_LAG after its end.
            if window.start is not None:
                where.append("kafkaPublishTimestamp >= @start_published")
                params.append(bigquery.ScalarQueryParameter("start_published", "TIMESTAMP", window.start))
            if window.end is not None:
                where.append("kafkaPublishTimestamp < @end_published")
                params.append(
                    bigquery.ScalarQueryParameter("end_published", "TIMESTAMP", window.end + LSST_PUBLISH_LAG)
                )
        return where

    # -- running -------------------------------------------------------------------------------------------------

    def dry_run_bytes(self, sql: str, job_config: Any) -> int:
        """What BigQuery estimates the query would scan (a dry run: free, nothing is read)."""
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            dry_run=True, use_query_cache=False, query_parameters=list(job_config.query_parameters)
        )
        job = self._call(
            self.client.query, sql, job_config=config, retry=self._retry(), job_retry=None, timeout=self.timeout
        )
        return int(job.total_bytes_processed or 0)

    def _narrowing_advice(self) -> str:
        return (
            "Narrow the search: a time window (start and end time), a cone (ra, dec and radius), "
            "or one table (table name, e.g. the newest)."
        )

    def check_cost(self, queries: list[TableQuery]) -> int:
        """Dry-run every query; refuse (QueryTooLargeError) when together they would scan more than allowed."""
        estimates = [max(0, int(self.estimate_bytes(query.sql, query.job_config))) for query in queries]
        total = self.estimated_bytes = sum(estimates)
        logger.info("BigQuery estimates %s for %s", format_bytes(total), ", ".join(q.table for q in queries))
        if total > self.max_bytes:
            raise QueryTooLargeError(
                f"This search would scan {format_bytes(total)} of BigQuery data in {len(queries)} "
                f"table{'s' if len(queries) != 1 else ''} ({', '.join(q.table for q in queries)}), more than the "
                f"{format_bytes(self.max_bytes)} this TOM allows (PITTGOOGLE_BIGQUERY_MAX_BYTES); nothing was "
                f"run or billed. {self._narrowing_advice()}",
                estimated_bytes=total,
                max_bytes=self.max_bytes,
            )
        for query, cap in zip(queries, share_budget(self.max_bytes, estimates), strict=True):
            query.max_bytes_billed = cap
        return total

    def _run(self, query: TableQuery):
        query.job_config.maximum_bytes_billed = (
            self.max_bytes if query.max_bytes_billed is None else query.max_bytes_billed
        )
        return self._call(
            self.client.query,
            query.sql,
            job_config=query.job_config,
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
        rows = self._call(query_job.result, retry=self._retry(), timeout=self.timeout, where=table)
        alerts = []
        for row in rows:
            try:
                alert = dict(row.items())
                if lighten_alerts:
                    alert = lighten_alert(alert)
                if callback is not None:
                    alert = callback(alert, **kwargs)
            except Exception as error:  # any failure of one row's mapping: report it, go on with the others
                skipped = SkippedRow(table, _row_ids(row), f"{type(error).__name__}: {error}")
                self.skipped_rows.append(skipped)
                logger.warning("skipped a row of %s that is not a readable alert (%s): %s", table, skipped.ids,
                               skipped.reason)
                continue
            if alert is not None:
                alerts.append(alert)
        return alerts

    def query_alerts(self, parameters: Mapping[str, Any], callback: AlertCallback | None = None) -> list[dict]:
        """Search every table for ``parameters``; the lightened alerts, newest first, at most ``max_results``.

        The cost guard runs first (:meth:`check_cost`). What the SQL selects passes the same Python filter too
        (:class:`~tom_pittgoogle.core.filters.AlertSelection`), then ``callback``.
        """
        queries = self.plan(parameters)
        self.check_cost(queries)
        selection = self._selection(parameters)

        def keep(alert: Mapping[str, Any], **kwargs: Any) -> Mapping[str, Any] | None:
            if not selection.passes(alert):
                return None
            return callback(alert, **kwargs) if callback is not None else alert

        self.skipped_rows = []
        alerts: list[dict] = []
        for query in queries:
            alerts += self._unpack(self._run(query), query.table, keep, True, {})
        alerts.sort(key=_newest_key, reverse=True)
        # Pitt-Google fills its tables through BigQuery subscriptions, which deliver at least once: a table may
        # hold an alert twice. Each alert is returned once.
        unique = {(alert.get("survey"), str(alert.get("source_id"))): alert for alert in reversed(alerts)}
        alerts = sorted(unique.values(), key=_newest_key, reverse=True)[: int(parameters.get("max_results") or 10)]
        logger.info(
            "queried %s from %s%s", count(len(alerts), "alert"), ", ".join(q.table for q in queries),
            f" ({len(self.skipped_rows)} unreadable rows skipped)" if self.skipped_rows else "",
        )
        return alerts


#: What BigQuery bills at least for each table a query reads (10 MiB): a job capped below it fails.
MIN_BILLED_BYTES = 10 * 1024 * 1024


def share_budget(max_bytes: int, estimates: list[int]) -> list[int]:
    """Each query's ``maximum_bytes_billed``: its estimate (at least BigQuery's 10 MiB minimum) plus a share, in
    proportion, of what those leave of ``max_bytes``. The shares add up to at most ``max_bytes``, so the jobs of one
    search together are billed no more than the cost guard, however many tables it reads."""
    if not estimates:
        return []
    needs = [max(estimate, MIN_BILLED_BYTES) for estimate in estimates]
    total = sum(needs)
    if total <= max_bytes:
        spare = max_bytes - total
        return [need + spare * need // total for need in needs]
    return [max(1, max_bytes * need // total) for need in needs]


def _newest_key(alert: Mapping[str, Any]) -> tuple:
    jd = alert.get("jd")
    return (jd is not None, jd if jd is not None else 0.0, str(alert.get("source_id")))


def _row_ids(row: Any) -> str:
    """The ids of a result row, for a log line (whatever of them it has)."""
    ids = []
    for path in ("objectId", "candid", "diaSource.diaSourceId", "diaSource.diaObjectId"):
        value: Any = row
        try:
            for part in path.split("."):
                value = value[part] if isinstance(value, Mapping) else value.get(part)
        except (KeyError, AttributeError, TypeError, IndexError):
            continue
        if value is not None:
            ids.append(f"{path}={value}")
    return ", ".join(ids) or "no ids"


def _mjd_tai(when: dt.datetime) -> float:
    """The TAI MJD of an aware UTC datetime (the scale of LSST's midpointMjdTai)."""
    from astropy.time import Time

    return float(Time(when.astimezone(dt.UTC).replace(tzinfo=None), scale="utc").tai.mjd)


def healpix_cone(cone: ConeFilter, order: int, max_pixels: int | None = None) -> list[int] | None:
    """The nested HEALPix pixels of ``order`` that a cone overlaps, as Pitt-Google numbers its ``healpix9``,
    ``healpix19`` and ``healpix29`` attributes and columns (pittgoogle-client ``Alert.healpix9``: nside 2**order,
    nested, from ra/dec in degrees). None when there would be more than ``max_pixels``."""
    import astropy.units as u
    from astropy_healpix import HEALPix

    grid = HEALPix(nside=2**order, order="nested")
    if max_pixels is not None:
        expected = math.pi * math.radians(cone.radius_deg) ** 2 / grid.pixel_area.to_value(u.sr)
        if expected > max_pixels:
            return None
    pixels = grid.cone_search_lonlat(cone.ra * u.deg, cone.dec * u.deg, cone.radius_deg * u.deg)
    if max_pixels is not None and len(pixels) > max_pixels:
        return None
    return sorted(int(pixel) for pixel in pixels)
