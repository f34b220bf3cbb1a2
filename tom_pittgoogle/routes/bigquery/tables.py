"""Which BigQuery tables a search reads, and the columns each has.

Pitt-Google keeps one alerts table per schema version (``alerts_v4_02``, ``alerts_v3_3``...). A search reads the
table named (an argument, or ``PITTGOOGLE_BIGQUERY_TABLE`` / ``PITTGOOGLE_LSST_BIGQUERY_TABLE``), else the tables
listed (``PITTGOOGLE_BIGQUERY_TABLES`` / ``PITTGOOGLE_LSST_BIGQUERY_TABLES``), else every ``alerts_vX_Y`` table of
the survey's dataset. The dataset's listing and each table's columns are kept for
``PITTGOOGLE_BIGQUERY_CACHE_SECONDS``, per endpoint.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from tom_pittgoogle import conf
from tom_pittgoogle.exceptions import ConfigurationError

_TABLE_PATH = re.compile(r"^[A-Za-z0-9\-]+(?::[A-Za-z0-9\-]+)?\.[A-Za-z0-9_]+\.[A-Za-z0-9_\-]+$")
#: Pitt-Google's alerts tables, one per schema version: alerts_v4_02, alerts_v11_1...
ALERTS_TABLE = re.compile(r"^alerts_v(\d+)_(\d+)$")
#: A table a user may name in a form: one of the survey's dataset.
_USER_TABLE_NAME = re.compile(r"^[A-Za-z0-9_]{1,1024}$")

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


def newest_first(tables: Iterable[str]) -> list[str]:
    """``tables`` without repeats, the newest schema version first."""
    return sorted(dict.fromkeys(tables), key=lambda path: (table_version(path), path), reverse=True)


def table_path(table_name: str | None, survey: str = "ztf") -> str:
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


def configured_tables(table_name: str | None, survey: str) -> list[str] | None:
    """The tables named (argument or setting) or listed in settings, newest first; None: find them in the dataset."""
    named = table_name or conf.survey_table(survey)
    if named:
        return [table_path(named, survey)]
    listed = conf.survey_tables(survey)
    if listed:
        return newest_first(table_path(name, survey) for name in listed)
    return None


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


def alerts_tables(dataset: str, list_table_ids: Callable[[], Iterable[str]]) -> list[str]:
    """Every ``alerts_vX_Y`` table of ``dataset``, newest first (cached); ``list_table_ids`` lists its table ids."""

    def load() -> list[str]:
        return newest_first(f"{dataset}.{name}" for name in list_table_ids() if ALERTS_TABLE.match(name))

    return _cached(_tables_cache, dataset, load)


def schema_paths(fields: Iterable[Any], prefix: str = "") -> set[str]:
    """Every column path of a BigQuery schema (``candidate``, ``candidate.jd``...)."""
    paths: set[str] = set()
    for field in fields:
        path = f"{prefix}{field.name}"
        paths.add(path)
        if field.fields:
            paths |= schema_paths(field.fields, f"{path}.")
    return paths


def table_columns(table: str, read_schema: Callable[[], Iterable[Any]]) -> frozenset[str]:
    """Every column path of ``table`` (cached); ``read_schema`` reads its schema's fields."""
    return _cached(_schema_cache, table, lambda: frozenset(schema_paths(read_schema())))
