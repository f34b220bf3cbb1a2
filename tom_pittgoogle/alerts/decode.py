"""Bytes -> alert record, whatever Pitt-Google publishes: the format is recognised from the bytes.

- ZTF Avro: an Avro Object Container File (magic ``Obj\x01``) whose header carries the 20-27 KB writer schema.
  Parsing that schema is 35-40% of a naive ``fastavro.reader`` decode, and every packet of a stream carries one
  of only a few schemas, so the decoder reads the header, looks the schema up in a cache keyed on its bytes, and
  reads the record with ``fastavro.schemaless_reader``.
- Rubin/LSST Avro in the Confluent wire format: byte 0 is 0, bytes 1-4 a big-endian schema id
  (``major * 100 + minor``), then the schemaless Avro record. The writer schema comes from the
  ``lsst-alert-packet`` package (every version from 7.0 it ships), parsed once per id and cached.
- JSON (Pitt-Google's ``*-json`` and derived streams such as ``ztf-SuperNNova``): NaN became null and bytes
  became base64 there, so the record is used as it is.

Each packet is decoded once. Nothing here imports Django.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import threading
import zlib
from pathlib import Path
from typing import Any

import fastavro
from fastavro.read import HEADER_SCHEMA

from ..exceptions import DecodeError

logger = logging.getLogger(__name__)

AVRO_CONTAINER_MAGIC = b"Obj\x01"
CONFLUENT_MAGIC = b"\x00"
#: The oldest Rubin alert schema read: Pitt-Google's LSST streams started after 7.0.
LSST_MIN_SCHEMA_ID = 700
_PARSED_HEADER_SCHEMA = fastavro.parse_schema(HEADER_SCHEMA)
_PARSED_LONG = fastavro.parse_schema("long")


class AlertDecoder:
    """Decode alert packets, parsing each distinct writer schema once (thread-safe)."""

    def __init__(self, max_cached_schemas: int = 64) -> None:
        self._schemas: dict[bytes, Any] = {}
        self._lsst_schemas: dict[int, Any] = {}
        self._max = max_cached_schemas
        self._lock = threading.Lock()

    def decode(self, data: bytes, topic: str | None = None) -> dict:
        """Return the alert record held in ``data``; raise :class:`DecodeError` saying what was seen.

        ``topic`` (the Pub/Sub topic or subscription the bytes came from) only sharpens error messages: the
        bytes alone say which format they are in.
        """
        where = f" from {topic}" if topic else ""
        if not data:
            raise DecodeError(f"empty message{where}: no alert packet in it")
        if data[:4] == AVRO_CONTAINER_MAGIC:
            return self._decode_avro_container(data)
        if data[:1] == CONFLUENT_MAGIC and len(data) > 5:
            return self._decode_wire_format(data, where)
        if data.lstrip()[:1] == b"{":
            return _decode_json(data)
        raise DecodeError(
            f"not an alert packet{where}: unrecognised leading bytes {data[:8]!r} ({len(data)} bytes), neither "
            "Avro (container file or Confluent wire format) nor JSON"
        )

    def lsst_schema(self, schema_id: int) -> Any:
        """The parsed Rubin alert schema with wire-format id ``schema_id`` (parsed once, then cached)."""
        parsed = self._lsst_schemas.get(schema_id)
        if parsed is None:
            parsed = _load_lsst_schema(schema_id)
            with self._lock:
                self._lsst_schemas[schema_id] = parsed
        return parsed

    def _decode_wire_format(self, data: bytes, where: str) -> dict:
        schema_id = int.from_bytes(data[1:5], "big")
        schema = self.lsst_schema(schema_id)
        try:
            return fastavro.schemaless_reader(io.BytesIO(data[5:]), schema)
        except (EOFError, ValueError, IndexError, TypeError, UnicodeDecodeError) as error:
            raise DecodeError(
                f"malformed Rubin/LSST packet{where} (Confluent wire-format Avro, {len(data)} bytes, schema id "
                f"{schema_id}): "
                f"{type(error).__name__}"
            ) from None

    def _writer_schema(self, schema_bytes: bytes) -> Any:
        parsed = self._schemas.get(schema_bytes)
        if parsed is None:
            try:
                parsed = fastavro.parse_schema(json.loads(schema_bytes))
            except Exception as error:
                raise DecodeError(f"Avro header holds an invalid writer schema: {error}") from None
            with self._lock:
                if len(self._schemas) >= self._max:
                    self._schemas.pop(next(iter(self._schemas)))
                self._schemas[schema_bytes] = parsed
        return parsed

    def _decode_avro_container(self, data: bytes) -> dict:
        stream = io.BytesIO(data)
        try:
            header = fastavro.schemaless_reader(stream, _PARSED_HEADER_SCHEMA)
            meta = header["meta"]
            schema = self._writer_schema(meta["avro.schema"])
            codec = meta.get("avro.codec", b"null").decode()
            count = fastavro.schemaless_reader(stream, _PARSED_LONG)
            size = fastavro.schemaless_reader(stream, _PARSED_LONG)
            if count < 1:
                raise DecodeError("Avro container file holds no record")
            block = stream.read(size)
            if len(block) != size:
                raise DecodeError(f"truncated Avro packet: block of {size} bytes, {len(block)} present")
            if codec == "deflate":
                block = zlib.decompress(block, -15)
            elif codec != "null":
                # Rare codecs (snappy, zstandard...): let fastavro's reader handle them, schema and all.
                return next(iter(fastavro.reader(io.BytesIO(data))))
            return fastavro.schemaless_reader(io.BytesIO(block), schema)
        except DecodeError:
            raise
        except (EOFError, KeyError, ValueError, StopIteration, zlib.error, IndexError, TypeError) as error:
            raise DecodeError(f"malformed Avro packet ({len(data)} bytes): {type(error).__name__}") from None


def lsst_schema_ids() -> list[int]:
    """Wire-format ids of every Rubin alert schema this installation reads (7.0 on, from lsst-alert-packet)."""
    from lsst.alert.packet import get_schema_root

    ids = []
    for major in get_schema_root().iterdir():
        if not major.name.isdigit():
            continue
        for minor in major.iterdir():
            if minor.name.isdigit() and (minor / f"lsst.v{major.name}_{minor.name}.alert.avsc").is_file():
                ids.append(int(major.name) * 100 + int(minor.name))
    return sorted(i for i in ids if i >= LSST_MIN_SCHEMA_ID)


def _load_lsst_schema(schema_id: int) -> Any:
    # lsst-alert-packet splits each version over several .avsc files that name each other; Schema.from_file
    # loads them together (fastavro's load_schema resolves the named types), so no .avsc is copied here.
    from lsst.alert.packet import Schema, get_schema_path

    major, minor = divmod(schema_id, 100)
    path = Path(get_schema_path(major, minor)) / f"lsst.v{major}_{minor}.alert.avsc"
    if schema_id < LSST_MIN_SCHEMA_ID or not path.is_file():
        known = lsst_schema_ids()
        raise DecodeError(
            f"Confluent wire-format Avro with schema id {schema_id}: not a Rubin alert schema that the installed "
            f"lsst-alert-packet ships (it reads ids {known[0]} to {known[-1]}; a newer schema needs a newer "
            "lsst-alert-packet)"
        )
    logger.info("parsing Rubin alert schema %d.%d", major, minor)
    return fastavro.parse_schema(Schema.from_file(str(path)).definition)


def _decode_json(data: bytes) -> dict:
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DecodeError(f"malformed JSON packet: {error}") from None
    if not isinstance(record, dict):
        raise DecodeError("JSON packet is not an object")
    return record


_default_decoder = AlertDecoder()


def decode_alert(data: bytes, topic: str | None = None) -> dict:
    """Decode one packet with the process-wide decoder (its schema cache is shared by all routes)."""
    return _default_decoder.decode(data, topic)


def decode_alert_b64(data: str | bytes, topic: str | None = None) -> dict:
    """Decode a base64 packet, as the Pub/Sub REST API delivers ``message.data``."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("message data is not valid base64") from None
    return decode_alert(raw, topic)
