"""Bytes -> alert record.

A ZTF packet is an Avro Object Container File whose header carries the 20-27 KB writer schema. Parsing that
schema is 35-40% of a naive ``fastavro.reader`` decode, and every packet of a stream carries one of only a few
schemas, so the decoder reads the header, looks the schema up in a cache keyed on its bytes, and reads the
record with ``fastavro.schemaless_reader``. Each packet is decoded once.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import threading
import zlib
from typing import Any

import fastavro
from fastavro.read import HEADER_SCHEMA

from ..exceptions import DecodeError

logger = logging.getLogger(__name__)

AVRO_CONTAINER_MAGIC = b"Obj\x01"
_PARSED_HEADER_SCHEMA = fastavro.parse_schema(HEADER_SCHEMA)
_PARSED_LONG = fastavro.parse_schema("long")


class AlertDecoder:
    """Decode alert packets, parsing each distinct writer schema once (thread-safe)."""

    def __init__(self, max_cached_schemas: int = 64) -> None:
        self._schemas: dict[bytes, Any] = {}
        self._max = max_cached_schemas
        self._lock = threading.Lock()

    def decode(self, data: bytes) -> dict:
        """Return the alert record held in ``data``; raise :class:`DecodeError` saying what was seen."""
        if not data:
            raise DecodeError("empty message: no alert packet in it")
        if data[:4] == AVRO_CONTAINER_MAGIC:
            return self._decode_avro_container(data)
        if data[:1] == b"\x00" and len(data) > 5:
            schema_id = int.from_bytes(data[1:5], "big")
            raise DecodeError(
                f"Confluent wire-format Avro (schema id {schema_id}) is not a packet format this version reads"
            )
        if data.lstrip()[:1] == b"{":
            return _decode_json(data)
        raise DecodeError(f"not an alert packet: unrecognised leading bytes {data[:8]!r} ({len(data)} bytes)")

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


def _decode_json(data: bytes) -> dict:
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DecodeError(f"malformed JSON packet: {error}") from None
    if not isinstance(record, dict):
        raise DecodeError("JSON packet is not an object")
    return record


_default_decoder = AlertDecoder()


def decode_alert(data: bytes) -> dict:
    """Decode one packet with the process-wide decoder (its schema cache is shared by all routes)."""
    return _default_decoder.decode(data)


def decode_alert_b64(data: str | bytes) -> dict:
    """Decode a base64 packet, as the Pub/Sub REST API delivers ``message.data``."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("message data is not valid base64") from None
    return decode_alert(raw)
