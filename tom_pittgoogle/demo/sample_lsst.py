"""Rubin/LSST sample packets, built from lsst-alert-packet's own schemas and sample alerts.

lsst-alert-packet ships, for each schema version, ``sample_data/alert.json`` (one alert with two previous
diaSources). Each packet here starts from that sample of its version, gets ids of its own (so that packets of
several versions are distinct alerts), a light curve (previous diaSources, forced photometry, and for 7.x
non-detection limits), and is serialised as Pitt-Google publishes it: Confluent wire format (byte 0, 4-byte
big-endian schema id ``major * 100 + minor``, schemaless Avro), or JSON as in ``lsst-alerts-json`` (NaN as null,
bytes as base64). ZTF's derived JSON streams (``ztf-SuperNNova``) are made from a ZTF record.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import io
import json
import math
import random
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import fastavro

from tom_pittgoogle.core.alerts.decode import lsst_schema_ids

__all__ = [
    "LSST_BANDS",
    "lsst_alert_schema",
    "lsst_schema_versions",
    "make_lsst_alert",
    "make_lsst_packets",
    "serialize_wire_format",
    "to_json_packet",
    "ztf_supernnova_json",
]

LSST_BANDS = ("u", "g", "r", "i", "z", "y")
_BASE_MJD = 61000.0  # 2025-11-15: during Rubin's survey


def lsst_schema_versions() -> list[tuple[int, int]]:
    """Every (major, minor) from 7.0 on that the installed lsst-alert-packet ships."""
    return [divmod(schema_id, 100) for schema_id in lsst_schema_ids()]


@cache
def lsst_alert_schema(major: int, minor: int) -> dict:
    """The alert schema of one version, named types resolved (``lsst.alert.packet.Schema.from_file``)."""
    from lsst.alert.packet import Schema, get_schema_path

    return Schema.from_file(str(Path(get_schema_path(major, minor)) / f"lsst.v{major}_{minor}.alert.avsc")).definition


@cache
def _parsed(major: int, minor: int) -> Any:
    return fastavro.parse_schema(lsst_alert_schema(major, minor))


def _sample(major: int, minor: int) -> dict:
    from lsst.alert.packet import get_schema_path

    return json.loads((Path(get_schema_path(major, minor)) / "sample_data" / "alert.json").read_text())


def _record_schema(major: int, minor: int, name: str) -> dict:
    return lsst_alert_schema(major, minor)["__named_schemas"][f"lsst.v{major}_{minor}.{name}"]


def _field_names(major: int, minor: int, name: str) -> set[str]:
    return {f["name"] for f in _record_schema(major, minor, name)["fields"]}


_ZERO = {"long": 0, "int": 0, "float": 0.0, "double": 0.0, "string": "", "boolean": False, "bytes": b""}


def _blank(record_schema: Mapping[str, Any]) -> dict:
    """A record of ``record_schema`` with every field at its default, null, or zero."""
    blank = {}
    for f in record_schema["fields"]:
        kind = f["type"]
        if "default" in f:
            blank[f["name"]] = copy.deepcopy(f["default"])
        elif isinstance(kind, list) and "null" in kind:
            blank[f["name"]] = None
        else:
            blank[f["name"]] = _ZERO.get(kind if isinstance(kind, str) else kind.get("type"), None)
    return blank


def _set(record: dict, names: set[str], **values: Any) -> None:
    # Only fields this version has: Avro writers ignore the others, but a reader would not see them.
    record.update({k: v for k, v in values.items() if k in names})


def make_lsst_alert(
    major: int,
    minor: int,
    *,
    index: int = 0,
    n_previous: int = 3,
    n_forced: int = 4,
    n_limits: int = 2,
    solar_system: bool = False,
    seed: int = 11,
) -> dict:
    """One alert record of schema ``major.minor``, distinct for each (version, index, seed).

    ``n_forced`` forced measurements alternate between a clear detection (S/N ~ 20) and a faint one (S/N ~ 1,
    shown as an upper limit); ``n_limits`` non-detection limits exist in 7.x only.
    """
    rng = random.Random(f"{seed}-{major}.{minor}-{index}")
    record = _sample(major, minor)
    source_fields = _field_names(major, minor, "diaSource")
    object_id = 170_000_000_000_000_000 + major * 10_000_000 + minor * 100_000 + index * 100 + seed
    source_ids = iter(range(object_id * 10 % 9_000_000_000_000_000_000 + 1, 10**19))
    ra, dec = rng.uniform(0, 360), rng.uniform(-70, 5)
    mjd = _BASE_MJD + index + rng.random() * 0.3

    def source(at_mjd: float, flux: float) -> dict:
        entry = copy.deepcopy(record["diaSource"])
        _set(entry, source_fields, diaSourceId=next(source_ids), diaObjectId=None if solar_system else object_id,
             ssObjectId=object_id if solar_system else None, midpointMjdTai=at_mjd, band=rng.choice(LSST_BANDS),
             ra=ra, dec=dec, psfFlux=flux, psfFluxErr=flux / 25, snr=25.0, reliability=round(rng.random(), 3),
             extendedness=round(rng.random(), 3), timeProcessedMjdTai=at_mjd + 0.01)
        return entry

    record["diaSource"] = source(mjd, rng.uniform(2_000, 50_000))
    record["prvDiaSources"] = [source(mjd - 3 * (i + 1), rng.uniform(2_000, 50_000)) for i in range(n_previous)]
    forced_schema = _record_schema(major, minor, "diaForcedSource")
    forced_fields = {f["name"] for f in forced_schema["fields"]}
    forced = []
    for i in range(n_forced):
        entry = _blank(forced_schema)
        flux_err = rng.uniform(80, 150)
        _set(entry, forced_fields, diaForcedSourceId=next(source_ids), diaObjectId=object_id, ra=ra, dec=dec,
             visit=1000 + i, detector=42, midpointMjdTai=mjd - 2 * (i + 1) - 0.5, band=rng.choice(LSST_BANDS),
             psfFlux=flux_err * (20.0 if i % 2 == 0 else 1.0), psfFluxErr=flux_err,
             timeProcessedMjdTai=mjd - 2 * (i + 1))
        forced.append(entry)
    record["prvDiaForcedSources"] = forced
    if "prvDiaNondetectionLimits" in record or "alertId" in record:  # 7.x
        record["prvDiaNondetectionLimits"] = [
            {"ccdVisitId": 5000 + i, "midpointMjdTai": mjd - 30 - i, "band": rng.choice(LSST_BANDS),
             "diaNoise": rng.uniform(100, 200)}
            for i in range(n_limits)
        ]
        record["alertId"] = record["diaSource"]["diaSourceId"]
    else:
        record["diaSourceId"] = record["diaSource"]["diaSourceId"]
    if solar_system:
        record["diaObject"] = None
        if isinstance(record.get("ssObject"), dict):
            record["ssObject"]["ssObjectId"] = object_id
    elif isinstance(record.get("diaObject"), dict):
        record["diaObject"]["diaObjectId"] = object_id
        record["diaObject"]["ra"], record["diaObject"]["dec"] = ra, dec
    return record


def serialize_wire_format(record: Mapping[str, Any], major: int, minor: int) -> bytes:
    """``record`` as Rubin and Pitt-Google's ``lsst-alerts`` publish it: Confluent wire-format Avro."""
    out = io.BytesIO()
    out.write(b"\x00" + (major * 100 + minor).to_bytes(4, "big"))
    fastavro.schemaless_writer(out, _parsed(major, minor), dict(record))
    return out.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def to_json_packet(record: Mapping[str, Any]) -> bytes:
    """``record`` as Pitt-Google's JSON streams carry it: NaN and infinity as null, bytes as base64, timestamps
    in ISO 8601."""
    return json.dumps(_json_value(record), allow_nan=False).encode()


def ztf_supernnova_json(record: Mapping[str, Any], prob_class0: float = 0.83) -> bytes:
    """A ZTF record as Pitt-Google's ``ztf-SuperNNova`` stream publishes it: the alert-lite JSON (ids under
    ``alertIds``, no cutouts) plus SuperNNova's SN Ia (class 0) vs core-collapse (class 1) probabilities."""
    lite = {
        "alertIds": {"objectId": record["objectId"], "candid": record["candid"]},
        "candidate": record["candidate"],
        "prv_candidates": record.get("prv_candidates"),
        "xmatch": {},
        "SuperNNova": {
            "prob_class0": prob_class0,
            "prob_class1": 1 - prob_class0,
            "predicted_class": 0 if prob_class0 >= 0.5 else 1,
        },
    }
    return to_json_packet(lite)


def make_lsst_packets(
    versions: Iterable[tuple[int, int]] | None = None, *, per_version: int = 1, seed: int = 11
) -> list[tuple[str, bytes]]:
    """``(name, wire-format packet)`` for each version (default: every version from 7.0), plus one
    solar-system alert of the newest version."""
    versions = list(versions or lsst_schema_versions())
    packets = []
    for major, minor in versions:
        for index in range(per_version):
            record = make_lsst_alert(major, minor, index=index, seed=seed)
            packets.append((f"lsst-v{major}.{minor}-{index}", serialize_wire_format(record, major, minor)))
    major, minor = versions[-1]
    record = make_lsst_alert(major, minor, index=per_version, seed=seed, solar_system=True)
    packets.append((f"lsst-v{major}.{minor}-solar-system", serialize_wire_format(record, major, minor)))
    return packets
