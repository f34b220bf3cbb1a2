"""The SQL of one BigQuery alerts table for a user's search: pure, no BigQuery call.

:func:`table_query` takes a survey, a table, the table's columns and the search (its parameters and the
:class:`~tom_pittgoogle.core.filters.AlertSelection` made of them) and returns the SQL with its query parameters,
or None when the table cannot hold an alert that passes (it has no such score). Every value a user gives is a
query parameter; the table name, which cannot be one, has been checked by :mod:`.tables`. Only the columns the
table has are selected and filtered on: Pitt-Google's schema versions differ.

A time window filters the LSST partition column ``kafkaPublishTimestamp`` and a cone the clustering columns
``healpix9``/``healpix19``, so that a narrowed search reads a fraction of the table.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tom_pittgoogle.core.alerts import SURVEYS
from tom_pittgoogle.core.filters import AlertSelection, ConeFilter, TimeWindow
from tom_pittgoogle.exceptions import ConfigurationError

#: LSST alerts are published after their exposure; a time window reads the partitions of kafkaPublishTimestamp
#: from its start to this long after its end (alerts published later than that are not found).
LSST_PUBLISH_LAG = dt.timedelta(days=2)
#: A cone lists its covering healpix19 pixels only up to this many (wider cones filter on healpix9 alone).
MAX_HEALPIX19_PIXELS = 2000
_DEGREE = math.pi / 180.0

#: What each survey's query selects and filters on (the columns the lightened alert and its light curve need).
SURVEY_COLUMNS = {
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


@dataclass
class TableQuery:
    """One table's query: its SQL and job config (every value a query parameter)."""

    table: str
    sql: str
    job_config: Any
    #: This query's share of the search's cost guard (set by :func:`~tom_pittgoogle.routes.bigquery.cost.check_cost`);
    #: None: the whole of it (a query run on its own).
    max_bytes_billed: int | None = None


def selection_of(parameters: Mapping[str, Any]) -> AlertSelection:
    """The search's selection; a parameter that is not one is a :class:`ConfigurationError`."""
    try:
        return AlertSelection.from_parameters(parameters)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


def column_of(paths: str, columns: frozenset[str]) -> str | None:
    """The first of ``a.b|c.d`` that the table (its ``columns``) has."""
    return next((path for path in paths.split("|") if path in columns), None)


def unsupported_message(
    survey: str, selection: AlertSelection, tables: Iterable[str], columns_of: Callable[[str], frozenset[str]]
) -> str:
    """Why no table can answer ``selection`` (a classifier's class or score the tables do not have)."""
    if selection.predicted_class is not None:
        return (
            "Pitt-Google's alerts tables hold no classifier results, so a BigQuery search cannot filter on "
            "predicted_class: use it on a classifier stream (e.g. lsst-supernnova, ztf-SuperNNova)."
        )
    score = selection.score.name if selection.score else ""
    tables = list(tables)
    names = sorted(
        name for name, paths in SURVEYS[survey].scores.items()
        if any(column_of(paths, columns_of(table)) for table in tables)
    )
    return (
        f"The {survey.upper()} alerts tables have no score {score!r}"
        + (f" (they have {', '.join(names)})" if names else "")
        + ": classifier scores are on the classifier streams."
    )


def table_query(
    survey: str,
    table: str,
    columns: Callable[[], frozenset[str]] | frozenset[str],
    parameters: Mapping[str, Any],
    selection: AlertSelection,
) -> TableQuery | None:
    """The query of one table, or None when the table cannot hold an alert that passes (no such score).

    ``objectId`` or ``candid`` (not both) selects the alerts; the selection's cone, time window and score narrow
    them; newest first; ``LIMIT max_results``. For LSST ``objectId`` and ``candid`` mean the diaObjectId (or
    ssObjectId) and the diaSourceId. ``columns``: the table's column paths, or what reads them (called only when
    the query needs them).
    """
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

    columns = columns() if callable(columns) else columns
    shape = SURVEY_COLUMNS[survey]
    params = [bigquery.ScalarQueryParameter("max_results", "INT64", max_results)]
    where: list[str] = []
    if survey == "lsst":
        where += _lsst_ids(object_id, candid, columns, params)
    else:
        where += _ztf_ids(object_id, candid, columns, params)
    if selection.cone is not None:
        where += _cone_sql(selection.cone, shape["ra"], shape["dec"], columns, params)
    if selection.time is not None:
        where += _time_sql(survey, selection.time, shape["time"], columns, params)
    if selection.score is not None:
        paths = SURVEYS[survey].scores.get(selection.score.name)
        column = column_of(paths, columns) if paths else None
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

def _time_sql(survey: str, window: TimeWindow, time_column: str, columns: frozenset[str], params: list) -> list[str]:
    from google.cloud import bigquery

    where = []
    if survey == "ztf":  # candidate.jd is UTC, the scale of the window
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
