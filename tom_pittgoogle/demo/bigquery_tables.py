"""BigQuery alert tables shaped like Pitt-Google's, for the BigQuery emulator (or real BigQuery).

Pitt-Google's ``<survey>.alerts_vX_Y`` tables hold the whole alert packet *without* the image
cutouts, with the nested and repeated fields of the Avro schema kept as RECORD / REPEATED RECORD
columns. These helpers build such a table from a ZTF Avro schema and fill it with decoded alerts.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from tom_pittgoogle.demo.emulators import DEFAULT_PROJECT

logger = logging.getLogger(__name__)

__all__ = [
    "CUTOUT_FIELDS",
    "AlertInsertError",
    "alert_to_bigquery_row",
    "bigquery_client",
    "bigquery_schema_from_avro",
    "create_alerts_table",
    "create_lsst_alerts_table",
    "load_alerts",
    "lsst_table_columns",
    "ztf_schema_of_version",
]

#: Alert fields that Pitt-Google's BigQuery tables do not hold (the FITS stamps live in Cloud Storage).
CUTOUT_FIELDS: tuple[str, ...] = ("cutoutScience", "cutoutTemplate", "cutoutDifference")

# The repeated fields of a ZTF alert, used when alert_to_bigquery_row() is given no table schema.
_ZTF_REPEATED_FIELDS = ("prv_candidates", "fp_hists")

_AVRO_PRIMITIVES = {
    "long": "INT64",
    "int": "INT64",
    "double": "FLOAT64",
    "float": "FLOAT64",
    "string": "STRING",
    "boolean": "BOOL",
    "bytes": "BYTES",
}
_AVRO_LOGICAL_TYPES = {
    "timestamp-millis": "TIMESTAMP",
    "timestamp-micros": "TIMESTAMP",
    "date": "DATE",
    "time-millis": "TIME",
    "time-micros": "TIME",
}
_MAX_DESCRIPTION = 1024  # BigQuery rejects longer column descriptions


class AlertInsertError(RuntimeError):
    """BigQuery rejected some rows of an insert; ``errors`` holds its per-row answers."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors


# -- Avro schema -> BigQuery schema ------------------------------------------------------------------


class _AvroToBigQuery:
    """One conversion: remembers named types, since a parsed schema spells each one out only once."""

    def __init__(self, avro_schema: Mapping[str, Any], required: bool) -> None:
        self.required = required
        self.named: dict[str, Mapping[str, Any]] = {}
        # fastavro's parse_schema()/load_schema_ordered() keep every named type here.
        for name, schema in (avro_schema.get("__named_schemas") or {}).items():
            if isinstance(schema, Mapping):
                self.named[name] = schema

    def fields(self, record: Mapping[str, Any], namespace: str, drop: Iterable[str] = ()) -> list[bigquery.SchemaField]:
        dropped = set(drop)
        namespace = self._register(record, namespace)
        return [
            self.field(f["name"], f["type"], namespace, f.get("doc"))
            for f in record["fields"]
            if f["name"] not in dropped
        ]

    def field(self, name: str, avro_type: Any, namespace: str, doc: str | None = None) -> bigquery.SchemaField:
        mode = "REQUIRED" if self.required else "NULLABLE"
        if isinstance(avro_type, list):
            branches = [t for t in avro_type if t != "null"]
            if len(branches) != 1:
                raise ValueError(f"field {name!r}: BigQuery cannot hold the union {avro_type!r}")
            avro_type = branches[0]
            mode = "NULLABLE"
        avro_type = self._resolve(avro_type, namespace)

        if isinstance(avro_type, Mapping):
            kind = avro_type.get("type")
            if kind == "array":
                item = self.field(name, avro_type["items"], namespace, doc)
                if item.mode == "REPEATED":
                    raise ValueError(f"field {name!r}: BigQuery has no arrays of arrays")
                # BigQuery has no NULL array: a null Avro array is stored as an empty REPEATED field.
                return bigquery.SchemaField(
                    name, item.field_type, mode="REPEATED", fields=item.fields, description=item.description
                )
            if kind == "record":
                sub = self.fields(avro_type, namespace)
                return bigquery.SchemaField(name, "RECORD", mode=mode, fields=sub, description=_doc(doc))
            if kind == "enum":
                return bigquery.SchemaField(name, "STRING", mode=mode, description=_doc(doc))
            if kind == "fixed":
                return bigquery.SchemaField(name, "BYTES", mode=mode, description=_doc(doc))
            if kind == "map":
                raise ValueError(f"field {name!r}: Avro maps have no BigQuery column type")
            logical = _AVRO_LOGICAL_TYPES.get(avro_type.get("logicalType", ""))
            if logical:
                return bigquery.SchemaField(name, logical, mode=mode, description=_doc(doc))
            # {"type": "long"} and the like: a type wrapped in an object. Keep the mode found so far.
            return self.field(name, kind if mode == "REQUIRED" else ["null", kind], namespace, doc)

        if avro_type in _AVRO_PRIMITIVES:
            return bigquery.SchemaField(name, _AVRO_PRIMITIVES[avro_type], mode=mode, description=_doc(doc))
        raise ValueError(f"field {name!r}: unsupported Avro type {avro_type!r}")

    def _register(self, record: Mapping[str, Any], namespace: str) -> str:
        """Remember a named record; return the namespace its own fields resolve names in."""
        name = record.get("name")
        if not name:
            return namespace
        ns = record.get("namespace", namespace)
        fullname = name if "." in name else (f"{ns}.{name}" if ns else name)
        self.named.setdefault(fullname, record)
        return fullname.rpartition(".")[0]

    def _resolve(self, avro_type: Any, namespace: str) -> Any:
        if not isinstance(avro_type, str) or avro_type in _AVRO_PRIMITIVES:
            if isinstance(avro_type, Mapping) and avro_type.get("type") in ("record", "enum", "fixed"):
                self._register(avro_type, namespace)
            return avro_type
        for candidate in (avro_type, f"{namespace}.{avro_type}" if namespace else avro_type):
            if candidate in self.named:
                return self.named[candidate]
        short = [s for n, s in self.named.items() if n.rpartition(".")[2] == avro_type]
        if len(short) == 1:
            return short[0]
        raise ValueError(f"unknown Avro named type {avro_type!r} (load the schemas it depends on first)")


def _doc(doc: str | None) -> str | None:
    return doc[:_MAX_DESCRIPTION] if doc else None


def bigquery_schema_from_avro(
    avro_schema: Mapping[str, Any],
    *,
    drop_fields: Iterable[str] = CUTOUT_FIELDS,
    required: bool = False,
) -> list[bigquery.SchemaField]:
    """BigQuery columns for an Avro record schema (a ZTF alert schema), without the cutouts.

    Records become RECORD, arrays REPEATED, unions with null NULLABLE; long/int -> INT64,
    double/float -> FLOAT64, string -> STRING, boolean -> BOOL, bytes -> BYTES. Named types may be
    given once and referred to by name later (as ``fastavro.schema.load_schema_ordered`` returns).

    ``required=False`` (default) makes every non-repeated column NULLABLE, so one table holds packets
    of older schema versions too (ZTF 3.x packets lack e.g. ``candidate.drbversion``, non-null in
    4.02). ``required=True`` maps non-null Avro types to REQUIRED, as BigQuery's own Avro loads do.
    """
    if avro_schema.get("type") != "record":
        raise ValueError("expected an Avro record schema")
    converter = _AvroToBigQuery(avro_schema, required)
    return converter.fields(avro_schema, avro_schema.get("namespace", ""), drop=drop_fields)


# -- alert dict -> JSON row --------------------------------------------------------------------------


def _json_scalar(value: Any) -> Any:
    if isinstance(value, float):
        # JSON has no NaN/Infinity: the client would send invalid JSON and BigQuery would refuse the row.
        return value if math.isfinite(value) else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")  # BigQuery's JSON form of BYTES
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _json_scalar(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_scalar(v) for v in value]
    return value


def _conform(record: Mapping[str, Any], schema: Sequence[bigquery.SchemaField], path: str) -> dict[str, Any]:
    """The row for ``record`` with exactly the columns of ``schema`` (missing ones None or [])."""
    row: dict[str, Any] = {}
    for field in schema:
        value = record.get(field.name)
        if field.mode == "REPEATED":
            items = value or []
            if field.field_type in ("RECORD", "STRUCT"):
                row[field.name] = [
                    _conform(item, field.fields, f"{path}{field.name}.") for item in items if item is not None
                ]
            else:
                row[field.name] = [_json_scalar(item) for item in items if item is not None]
        elif field.field_type in ("RECORD", "STRUCT"):
            row[field.name] = None if value is None else _conform(value, field.fields, f"{path}{field.name}.")
        else:
            row[field.name] = _json_scalar(value)
    extra = set(record) - {field.name for field in schema}
    if extra:
        # Older packets can carry columns the table has not got (v3.5 prv_candidates hold forced photometry).
        logger.debug("dropping fields not in the table: %s", ", ".join(sorted(f"{path}{n}" for n in extra)))
    return row


def alert_to_bigquery_row(
    alert: Mapping[str, Any],
    schema: Sequence[bigquery.SchemaField] | None = None,
    *,
    drop_fields: Iterable[str] = CUTOUT_FIELDS,
) -> dict[str, Any]:
    """A JSON-safe BigQuery row for a decoded alert: no cutouts, NaN/inf -> None, bytes -> base64.

    With ``schema`` (the table's columns) the row gets exactly those columns, recursively: fields the
    packet lacks (older schema versions) become None, or [] for REPEATED ones, and fields the table
    lacks are dropped. Without it, only ZTF's repeated fields (``prv_candidates``, ``fp_hists``) are
    turned from None into [].
    """
    dropped = set(drop_fields)
    record = {k: v for k, v in alert.items() if k not in dropped}
    if schema is not None:
        return _conform(record, schema, "")
    row = {k: _json_scalar(v) for k, v in record.items()}
    for name in _ZTF_REPEATED_FIELDS:
        if name in row and row[name] is None:
            row[name] = []
    return row


# -- client, table, rows -----------------------------------------------------------------------------


def bigquery_client(endpoint: str, project: str = DEFAULT_PROJECT) -> bigquery.Client:
    """A BigQuery client for an emulator at ``endpoint`` (``http://127.0.0.1:PORT``), without credentials."""
    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )


def _table_ref(client: bigquery.Client, table_id: str) -> bigquery.TableReference:
    return bigquery.TableReference.from_string(table_id, default_project=client.project)


def create_alerts_table(
    client: bigquery.Client,
    table_id: str,
    avro_schema: Mapping[str, Any],
    *,
    exists_ok: bool = True,
    extra_columns: Sequence[bigquery.SchemaField] = (),
    partition_field: str | None = None,
    clustering_fields: Sequence[str] | None = None,
) -> bigquery.Table:
    """Create the table ``[project.]dataset.table`` with the alert columns of ``avro_schema``.

    The dataset is created too if missing. With ``exists_ok`` an existing table is returned as it is.
    ``extra_columns`` are added after the alert's; ``partition_field`` partitions the table by day on that
    TIMESTAMP column and ``clustering_fields`` clusters it (as Pitt-Google's LSST tables are).
    """
    ref = _table_ref(client, table_id)
    dataset = bigquery.Dataset(bigquery.DatasetReference(ref.project, ref.dataset_id))
    client.create_dataset(dataset, exists_ok=True)
    table = bigquery.Table(ref, schema=[*bigquery_schema_from_avro(avro_schema), *extra_columns])
    if partition_field:
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field=partition_field
        )
    if clustering_fields:
        table.clustering_fields = list(clustering_fields)
    version = avro_schema.get("version")
    table.description = f"Alerts{f' (Avro schema {version})' if version else ''}, without image cutouts"
    table = client.create_table(table, exists_ok=exists_ok)
    logger.info("BigQuery table %s ready (%d columns)", table_id, len(table.schema))
    return table


def load_alerts(
    client: bigquery.Client,
    table_id: str | bigquery.Table,
    alerts: Iterable[Mapping[str, Any]],
    *,
    batch_size: int = 100,
    retry_timeout: float = 60.0,
    extra: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> int:
    """Insert decoded alerts into the table (streaming inserts); return how many rows went in.

    Each alert is fitted to the table's columns first (see :func:`alert_to_bigquery_row`), so
    packets of older schema versions load into a table of a newer one. Raises
    :class:`AlertInsertError` when BigQuery rejects any row.

    ``insert_rows_json`` is used because ``load_table_from_json`` fails on the emulator (400 on its
    multipart upload). 100 alerts of about 60 KB stay under BigQuery's 10 MB per request.
    ``retry_timeout`` bounds the client's retries: the emulator answers HTTP 500 to a value of the
    wrong type, which the client would otherwise retry for 600 s; after ``retry_timeout`` that
    surfaces as ``google.api_core.exceptions.RetryError``. ``extra(alert)`` gives values of the table's extra
    columns (e.g. :func:`lsst_table_columns`), merged into the alert before it is fitted.
    """
    table = table_id if isinstance(table_id, bigquery.Table) else client.get_table(table_id)
    retry = bigquery.DEFAULT_RETRY.with_timeout(retry_timeout)
    table_name = f"{table.project}.{table.dataset_id}.{table.table_id}"  # full_table_id is None on local Tables
    batch: list[dict[str, Any]] = []
    total = 0

    def flush() -> None:
        nonlocal total
        errors = client.insert_rows_json(table, batch, retry=retry)
        if errors:
            raise AlertInsertError(
                f"BigQuery rejected {len(errors)} of {len(batch)} rows for {table_name}; first errors: {errors[:3]}",
                errors,
            )
        total += len(batch)
        batch.clear()

    for alert in alerts:
        if extra is not None:
            alert = {**alert, **extra(alert)}
        batch.append(alert_to_bigquery_row(alert, table.schema))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    logger.info("inserted %d alerts into %s", total, table_name)
    return total


# -- Pitt-Google's LSST tables (partitioned, clustered) and older ZTF column sets ----------------------------------

#: Columns Pitt-Google adds to each LSST alert row (``bq_lsst_alerts_v10_0_schema.json``): the HEALPix pixels of
#: the diaSource (nested, orders 9, 19 and 29) and when the alert was published to Kafka.
LSST_EXTRA_COLUMNS = (
    bigquery.SchemaField("healpix9", "INT64"),
    bigquery.SchemaField("healpix19", "INT64"),
    bigquery.SchemaField("healpix29", "INT64"),
    bigquery.SchemaField("kafkaPublishTimestamp", "TIMESTAMP"),
)


def create_lsst_alerts_table(
    client: bigquery.Client, table_id: str, avro_schema: Mapping[str, Any], *, exists_ok: bool = True
) -> bigquery.Table:
    """An LSST ``alerts_vX_Y`` table as Pitt-Google's: the alert's columns plus ``healpix9/19/29`` and
    ``kafkaPublishTimestamp``, partitioned by day on ``kafkaPublishTimestamp``, clustered by the healpix columns.
    Fill it with ``load_alerts(..., extra=lsst_table_columns)``."""
    return create_alerts_table(
        client, table_id, avro_schema, exists_ok=exists_ok, extra_columns=LSST_EXTRA_COLUMNS,
        partition_field="kafkaPublishTimestamp", clustering_fields=["healpix9", "healpix19", "healpix29"],
    )


def lsst_table_columns(alert: Mapping[str, Any], publish_delay: dt.timedelta = dt.timedelta(minutes=2)) -> dict:
    """The extra columns of an LSST alert's row: its diaSource's HEALPix pixels as pittgoogle-client computes them
    (``Alert.healpix9``: nside 2**order, nested, ra/dec in degrees) and a publish time ``publish_delay`` after
    the exposure's midpoint (``midpointMjdTai``, TAI)."""
    import astropy.units as u
    from astropy.time import Time
    from astropy_healpix import HEALPix

    source = alert.get("diaSource") or {}
    columns: dict[str, Any] = {}
    for order in (9, 19, 29):
        grid = HEALPix(nside=2**order, order="nested")
        columns[f"healpix{order}"] = int(grid.lonlat_to_healpix(source["ra"] * u.deg, source["dec"] * u.deg))
    published = Time(source["midpointMjdTai"], format="mjd", scale="tai").utc.to_datetime(timezone=dt.UTC)
    columns["kafkaPublishTimestamp"] = (published + publish_delay).isoformat()
    return columns


#: Fields ZTF added over its schema versions: an older table lacks them (its candidate has fewer columns).
_ZTF_FIELDS_ADDED = {
    (4, 2): {"top": (), "candidate": ()},
    (3, 3): {"top": ("fp_hists",), "candidate": ()},
    (3, 1): {"top": ("fp_hists",), "candidate": ("drb", "drbversion")},
    (3, 0): {"top": ("fp_hists",), "candidate": ("drb", "drbversion", "nmtchps")},
    (1, 8): {"top": ("fp_hists",), "candidate": ("drb", "drbversion", "nmtchps", "neargaia", "neargaiabright",
                                                 "maggaia", "maggaiabright", "exptime")},
}


def ztf_schema_of_version(avro_schema: Mapping[str, Any], major: int, minor: int) -> dict[str, Any]:
    """A ZTF alert schema shaped like an older version's column set: the 4.02 schema without the fields added
    since (``fp_hists`` from 4.0; ``drb``/``drbversion`` from 3.3; Gaia cross-match fields from 3.x). Fields are
    removed by name where they exist, so the result always loads."""
    removed = _ZTF_FIELDS_ADDED[(major, minor)]
    schema = dict(avro_schema)
    schema["fields"] = []
    for field in avro_schema["fields"]:
        if field["name"] in removed["top"]:
            continue
        if field["name"] == "candidate" and removed["candidate"]:
            kept = [f for f in field["type"]["fields"] if f["name"] not in removed["candidate"]]
            field = {**field, "type": {**field["type"], "fields": kept}}
        schema["fields"].append(field)
    schema["version"] = f"{major}.{minor}"
    return schema
