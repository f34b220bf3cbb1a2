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

**Limits** (issue 11: memory bombs). Every packet is read within bounds that are settings
(``PITTGOOGLE_DECODE_*``, see :class:`DecodeLimits`): the packet's size; the Avro codecs accepted (null and
deflate by default); the size a compressed block may inflate to (decompression is streamed and stopped at the
cap, so a 1 MB deflate bomb never becomes 2 GiB); the writer schema, checked before use (an array or map of items
that take no bytes, such as nulls, could declare 10^9 items in a few bytes and is refused); and, on the decoded
record, the longest array, the longest string or bytes value and the deepest nesting. JSON nested deeper than
Python can parse is a DecodeError too. Whatever goes wrong inside a packet is a :class:`DecodeError` that says
why; nothing else leaves :func:`decode_alert`.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import dataclasses
import io
import json
import logging
import lzma
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.read import HEADER_SCHEMA

from .. import conf
from ..exceptions import DecodeError

logger = logging.getLogger(__name__)

AVRO_CONTAINER_MAGIC = b"Obj\x01"
CONFLUENT_MAGIC = b"\x00"
#: The oldest Rubin alert schema read: Pitt-Google's LSST streams started after 7.0.
LSST_MIN_SCHEMA_ID = 700
_PARSED_HEADER_SCHEMA = fastavro.parse_schema(HEADER_SCHEMA)
_PARSED_LONG = fastavro.parse_schema("long")


@dataclass(frozen=True)
class DecodeLimits:
    """The bounds a packet must keep (each a ``PITTGOOGLE_DECODE_*`` setting; see :mod:`tom_pittgoogle.conf`)."""

    max_packet_bytes: int = 10 * 1024 * 1024
    max_decompressed_bytes: int = 32 * 1024 * 1024
    codecs: tuple[str, ...] = ("null", "deflate")
    max_array_items: int = 100_000
    max_string_bytes: int = 4 * 1024 * 1024
    max_depth: int = 32

    @classmethod
    def from_settings(cls) -> DecodeLimits:
        def positive(name: str) -> int:
            value = conf.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                from ..exceptions import ConfigurationError

                raise ConfigurationError(f"{name} must be a positive whole number, not {value!r}")
            return value

        codecs = conf.get("PITTGOOGLE_DECODE_CODECS")
        return cls(
            max_packet_bytes=positive("PITTGOOGLE_DECODE_MAX_PACKET_BYTES"),
            max_decompressed_bytes=positive("PITTGOOGLE_DECODE_MAX_DECOMPRESSED_BYTES"),
            codecs=(codecs,) if isinstance(codecs, str) else tuple(str(c) for c in codecs),
            max_array_items=positive("PITTGOOGLE_DECODE_MAX_ARRAY_ITEMS"),
            max_string_bytes=positive("PITTGOOGLE_DECODE_MAX_STRING_BYTES"),
            max_depth=positive("PITTGOOGLE_DECODE_MAX_DEPTH"),
        )


#: Codecs this module can stream with a cap on the output (others, even if listed in the setting, are refused).
_STREAMING_CODECS = {
    "deflate": lambda: zlib.decompressobj(-15),
    "bzip2": bz2.BZ2Decompressor,
    "xz": lzma.LZMADecompressor,
}


def _decompress(block: bytes, codec: str, limits: DecodeLimits) -> bytes:
    """``block`` decompressed with ``codec``, streamed and stopped past ``max_decompressed_bytes``."""
    if codec == "null":
        return block
    if codec not in limits.codecs:
        raise DecodeError(
            f"Avro codec {codec!r} is not accepted (PITTGOOGLE_DECODE_CODECS allows {', '.join(limits.codecs)})"
        )
    if codec not in _STREAMING_CODECS:
        raise DecodeError(f"Avro codec {codec!r} cannot be read with a bound on its output, so it is refused")
    cap = limits.max_decompressed_bytes
    decompressor = _STREAMING_CODECS[codec]()
    try:
        out = decompressor.decompress(block, cap + 1)
    except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError) as error:
        raise DecodeError(f"Avro block does not decompress with codec {codec!r}: {error}") from None
    if len(out) > cap:
        raise DecodeError(
            f"Avro block ({codec}, {len(block)} bytes) decompresses to more than "
            f"PITTGOOGLE_DECODE_MAX_DECOMPRESSED_BYTES ({cap} bytes): refused"
        )
    return out


def _zero_size_types(schema: Any) -> list[str]:
    """Names of the array/map item types in ``schema`` whose values take no bytes in Avro's binary encoding.

    Such an array can declare a billion items in a few bytes (each read costs memory, none costs input), so a
    writer schema that has one is refused before any record is read.
    """
    named: dict[str, Any] = {}
    found: list[str] = []
    budget = [100_000]  # schema nodes visited: a schema of 10 MB is still walked in bounded time

    def zero(node: Any, stack: frozenset) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            raise DecodeError("Avro writer schema is too large to check")
        if isinstance(node, str):
            if node == "null":
                return True
            if node in named and node not in stack:
                return zero(named[node], stack | {node})
            return False
        if isinstance(node, list):  # a union: the branch index takes at least one byte
            for branch in node:
                walk(branch, stack)
            return False
        if not isinstance(node, Mapping):
            raise DecodeError(f"Avro writer schema holds a {type(node).__name__} where a type belongs")
        kind = node.get("type")
        name = node.get("name")
        if isinstance(name, str) and kind in ("record", "error", "enum", "fixed"):
            named.setdefault(name, node)
            if isinstance(node.get("namespace"), str):
                named.setdefault(f"{node['namespace']}.{name}", node)
        if kind in ("record", "error"):
            fields = node.get("fields")
            if not isinstance(fields, list):
                raise DecodeError("Avro writer schema has a record without a list of fields")
            sizes = [zero(f.get("type") if isinstance(f, Mapping) else None, stack | {name}) for f in fields]
            return all(sizes)
        if kind == "fixed":
            return node.get("size") == 0
        if kind in ("array", "map"):
            items = node.get("items") if kind == "array" else node.get("values")
            if kind == "array" and zero(items, stack):
                found.append(f"array of {items if isinstance(items, str) else items.get('type')}")
            elif kind == "map":
                zero(items, stack)  # every map entry has a key (at least one byte)
            return False
        if isinstance(kind, (str, list, Mapping)) and kind not in ("enum",):
            return zero(kind, stack)
        return False

    def walk(node: Any, stack: frozenset) -> None:
        zero(node, stack)

    walk(schema, frozenset())
    return found


def check_limits(value: Any, limits: DecodeLimits, what: str = "packet", *, field_names: bool = True) -> None:
    """Raise :class:`DecodeError` if ``value`` (a decoded record) nests too deep or holds too long an array or
    string. Iterative: a record nested deeper than Python's recursion limit is still checked. ``field_names``:
    whether to check the length of field names too (an Avro record's come from its checked writer schema)."""
    max_string, max_items, max_depth = limits.max_string_bytes, limits.max_array_items, limits.max_depth
    if not isinstance(value, (Mapping, list, tuple)):
        if isinstance(value, (str, bytes, bytearray)) and len(value) > max_string:
            raise DecodeError(f"{what} is {len(value)} long, more than PITTGOOGLE_DECODE_MAX_STRING_BYTES")
        return
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if depth > max_depth:
            raise DecodeError(f"{what}: nested more than PITTGOOGLE_DECODE_MAX_DEPTH ({max_depth}) deep at {path}")
        if len(node) > max_items:
            raise DecodeError(
                f"{what}: {path or 'the packet'} holds {len(node)} items, more than "
                f"PITTGOOGLE_DECODE_MAX_ARRAY_ITEMS ({max_items})"
            )
        # Exact type tests: JSON and fastavro give plain dicts, lists, str and bytes, and this loop visits every
        # value of every packet (isinstance against the abstract Mapping costs three times as much).
        if type(node) is dict or isinstance(node, Mapping):
            for key, child in node.items():
                kind = type(child)
                if kind in _SCALARS:
                    pass
                elif kind is dict or kind is list:
                    stack.append((child, depth + 1, _child_path(path, key)))
                elif (kind is str or kind is bytes) and len(child) > max_string:
                    _too_long(what, _child_path(path, key), len(child), max_string)
                elif kind is not str and kind is not bytes and isinstance(child, (Mapping, list, tuple)):
                    stack.append((child, depth + 1, _child_path(path, key)))
                if field_names and type(key) is str and len(key) > max_string:
                    _too_long(what, f"a field name in {path or 'the packet'}", len(key), max_string)
        else:
            for index, child in enumerate(node):
                kind = type(child)
                if kind in _SCALARS:
                    continue
                if kind is dict or kind is list or (kind is not str and isinstance(child, (Mapping, list, tuple))):
                    stack.append((child, depth + 1, _child_path(path, index)))
                elif (kind is str or kind is bytes or kind is bytearray) and len(child) > max_string:
                    _too_long(what, _child_path(path, index), len(child), max_string)


_SCALARS = frozenset({int, float, bool, type(None)})


def _too_long(what: str, where: str, size: int, limit: int) -> None:
    raise DecodeError(f"{what}: {where} is {size} long, more than PITTGOOGLE_DECODE_MAX_STRING_BYTES ({limit})")


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"[:200]
    return (f"{path}.{key}" if path else str(key))[:200]


class AlertDecoder:
    """Decode alert packets, parsing each distinct writer schema once (thread-safe)."""

    def __init__(self, max_cached_schemas: int = 64) -> None:
        self._schemas: dict[bytes, Any] = {}
        self._lsst_schemas: dict[int, Any] = {}
        self._max = max_cached_schemas
        self._lock = threading.Lock()

    def decode(
        self,
        data: bytes,
        topic: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        limits: DecodeLimits | None = None,
    ) -> dict:
        """Return the alert record held in ``data``; raise :class:`DecodeError` saying what was seen.

        ``topic`` (the Pub/Sub topic or subscription the bytes came from) only sharpens error messages: the
        bytes alone say which format they are in. ``attributes`` (the message's attributes) are not needed to
        read the bytes; :func:`~tom_pittgoogle.alerts.surveys.lighten_alert` uses them. ``limits`` defaults to
        the settings. Nothing but :class:`DecodeError` leaves this method.
        """
        limits = limits or DecodeLimits.from_settings()
        where = f" from {topic}" if topic else ""
        try:
            record = self._decode(data, where, limits)
            # An Avro record's field names come from its writer schema, checked before use; JSON's from the data.
            check_limits(record, limits, field_names=not isinstance(data, bytes) or data[:1] not in (b"O", b"\x00"))
            return record
        except DecodeError:
            raise
        except RecursionError:
            raise DecodeError(f"packet{where} is nested too deep to read") from None
        except Exception as error:  # a reader's bug on hostile bytes must not loop a subscription
            logger.debug("unexpected error decoding a packet%s", where, exc_info=True)
            raise DecodeError(f"unreadable packet{where}: {type(error).__name__}") from None

    def _decode(self, data: bytes, where: str, limits: DecodeLimits) -> dict:
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise DecodeError(f"message data{where} is {type(data).__name__}, not bytes")
        if not data:
            raise DecodeError(f"empty message{where}: no alert packet in it")
        if len(data) > limits.max_packet_bytes:
            raise DecodeError(
                f"packet{where} is {len(data)} bytes, more than PITTGOOGLE_DECODE_MAX_PACKET_BYTES "
                f"({limits.max_packet_bytes})"
            )
        if data[:4] == AVRO_CONTAINER_MAGIC:
            return self._decode_avro_container(data, limits)
        if data[:1] == CONFLUENT_MAGIC and len(data) > 5:
            return self._decode_wire_format(data, where)
        if data.lstrip()[:1] == b"{":
            return _decode_json(data, limits)
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

    def _writer_schema(self, schema_bytes: bytes, limits: DecodeLimits) -> Any:
        parsed = self._schemas.get(schema_bytes)
        if parsed is None:
            # A schema is held to the depth and string limits; its size is bounded by the packet's.
            schema_limits = dataclasses.replace(limits, max_array_items=limits.max_packet_bytes)
            definition = _loads_bounded(schema_bytes, schema_limits, "Avro writer schema")
            zero_size = _zero_size_types(definition)
            if zero_size:
                raise DecodeError(
                    f"Avro writer schema has an {zero_size[0]}: items that take no bytes could declare any "
                    "number of them, so the packet is refused"
                )
            try:
                parsed = fastavro.parse_schema(definition)
            except Exception as error:
                raise DecodeError(f"Avro header holds an invalid writer schema: {str(error)[:200]}") from None
            with self._lock:
                if len(self._schemas) >= self._max:
                    self._schemas.pop(next(iter(self._schemas)))
                self._schemas[schema_bytes] = parsed
        return parsed

    def _decode_avro_container(self, data: bytes, limits: DecodeLimits) -> dict:
        stream = io.BytesIO(data)
        try:
            header = fastavro.schemaless_reader(stream, _PARSED_HEADER_SCHEMA)
            meta = header["meta"]
            codec = meta.get("avro.codec", b"null").decode("ascii", "replace")
            if codec != "null" and codec not in limits.codecs:
                raise DecodeError(
                    f"Avro codec {codec[:40]!r} is not accepted (PITTGOOGLE_DECODE_CODECS allows "
                    f"{', '.join(limits.codecs)})"
                )
            schema = self._writer_schema(meta["avro.schema"], limits)
            count = fastavro.schemaless_reader(stream, _PARSED_LONG)
            size = fastavro.schemaless_reader(stream, _PARSED_LONG)
            if count < 1:
                raise DecodeError("Avro container file holds no record")
            if size < 0 or size > len(data):
                raise DecodeError(f"truncated Avro packet: block of {size} bytes in a {len(data)}-byte packet")
            block = stream.read(size)
            if len(block) != size:
                raise DecodeError(f"truncated Avro packet: block of {size} bytes, {len(block)} present")
            block = _decompress(block, codec, limits)
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


def _loads_bounded(data: bytes, limits: DecodeLimits, what: str) -> Any:
    try:
        value = json.loads(data)
    except RecursionError:
        raise DecodeError(f"{what} is nested deeper than can be read") from None
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError, and ints of over 4300 digits
        raise DecodeError(f"malformed {what}: {str(error)[:200]}") from None
    check_limits(value, limits, what)
    return value


def _decode_json(data: bytes, limits: DecodeLimits) -> dict:
    try:
        record = json.loads(data)
    except RecursionError:
        raise DecodeError("JSON packet is nested deeper than can be read") from None
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError, and ints of over 4300 digits
        raise DecodeError(f"malformed JSON packet: {str(error)[:200]}") from None
    if not isinstance(record, dict):
        raise DecodeError("JSON packet is not an object")
    return record


_default_decoder = AlertDecoder()


def decode_alert(data: bytes, topic: str | None = None, attributes: Mapping[str, Any] | None = None) -> dict:
    """Decode one packet with the process-wide decoder (its schema cache is shared by all routes).

    Returns the survey's record as published (lighten it with
    :func:`~tom_pittgoogle.alerts.surveys.lighten_alert`, passing the same ``attributes``); raises only
    :class:`DecodeError`.
    """
    return _default_decoder.decode(data, topic, attributes)


def decode_alert_b64(
    data: str | bytes, topic: str | None = None, attributes: Mapping[str, Any] | None = None
) -> dict:
    """Decode a base64 packet, as the Pub/Sub REST API delivers ``message.data``."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise DecodeError("message data is not valid base64") from None
    return decode_alert(raw, topic, attributes)
