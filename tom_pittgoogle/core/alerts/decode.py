"""Bytes -> alert record, whatever Pitt-Google publishes: the format is recognised from the bytes.

- ZTF Avro: an Avro Object Container File (magic ``Obj\x01``) whose header carries the 20-27 KB writer schema.
  Parsing that schema is a large share of a naive ``fastavro.reader`` decode, and every packet of a stream carries
  one of only a few schemas, so the decoder reads the header, looks the schema up in a cache keyed on its bytes, and
  reads the record (after decompressing its block itself, within the limits below) with the schema's reader.
- Rubin/LSST Avro in the Confluent wire format: byte 0 is 0, bytes 1-4 a big-endian schema id
  (``major * 100 + minor``), then the schemaless Avro record. The writer schema comes from the
  ``lsst-alert-packet`` package (every version from 7.0 it ships), parsed once per id and cached.
- JSON (Pitt-Google's ``*-json`` and derived streams such as ``ztf-SuperNNova``): NaN became null and bytes
  became base64 there, so the record is used as it is.

Each packet is decoded once. Nothing here imports Django.

**Readers.** A writer schema's reader is chosen once, when the schema is first seen, never per message:
``cavro`` (a Cython Avro codec, faster than fastavro on alert packets, identical records: the tests compare
both on every real and sample packet of every ZTF and LSST version) where it accepts the schema, with the options
the ZTF schemas need (their ``null`` defaults of non-null types: ``allow_invalid_default_values``; records as
dicts); fastavro's ``schemaless_reader`` for a schema cavro refuses, or when cavro is not installed.

**Limits.** Every packet is read within bounds that are settings (``PITTGOOGLE_DECODE_*``, see
:class:`DecodeLimits`): the packet's size; the Avro codecs accepted (null and deflate by default); the size a
compressed block may inflate to (decompression is streamed and stopped at the cap, so a 1 MB deflate bomb never
becomes 2 GiB); the writer schema, checked before any reader sees it (:mod:`.schema_bounds`: a recursive schema,
an array of items that take no bytes, a schema nested past the depth limit are refused); the memory the record can
take once read, proven from the schema and the packet's size before it is read (so a small packet cannot become
gigabytes of Python objects, nor take long to read: decoding time grows with what is built); and, on the decoded
record, the longest array, the longest string or bytes value and the deepest nesting. JSON nested deeper than
Python can parse is a DecodeError too. Whatever goes wrong inside a packet is a :class:`DecodeError` that says
why; nothing else leaves :func:`decode_alert`.
"""

from __future__ import annotations

import binascii
import bz2
import contextlib
import contextvars
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
import pybase64

try:
    import cavro
except ImportError:  # pragma: no cover - a dependency; fastavro reads every schema on its own
    cavro = None

from tom_pittgoogle import conf
from tom_pittgoogle.core.alerts.schema_bounds import SchemaBounds, schema_bounds
from tom_pittgoogle.exceptions import DecodeError

logger = logging.getLogger(__name__)

AVRO_CONTAINER_MAGIC = b"Obj\x01"
CONFLUENT_MAGIC = b"\x00"
#: The oldest Rubin alert schema read: Pitt-Google's LSST streams started after 7.0.
LSST_MIN_SCHEMA_ID = 700


@dataclass(frozen=True)
class DecodeLimits:
    """The bounds a packet must keep (each a ``PITTGOOGLE_DECODE_*`` setting; see :mod:`tom_pittgoogle.conf`)."""

    # The defaults are the settings' defaults, decided in one place (conf.DEFAULTS).
    max_packet_bytes: int = conf.DEFAULTS["PITTGOOGLE_DECODE_MAX_PACKET_BYTES"]
    max_decompressed_bytes: int = conf.DEFAULTS["PITTGOOGLE_DECODE_MAX_DECOMPRESSED_BYTES"]
    codecs: tuple[str, ...] = tuple(conf.DEFAULTS["PITTGOOGLE_DECODE_CODECS"])
    max_array_items: int = conf.DEFAULTS["PITTGOOGLE_DECODE_MAX_ARRAY_ITEMS"]
    max_string_bytes: int = conf.DEFAULTS["PITTGOOGLE_DECODE_MAX_STRING_BYTES"]
    max_depth: int = conf.DEFAULTS["PITTGOOGLE_DECODE_MAX_DEPTH"]
    max_decoded_bytes: int = conf.DEFAULTS["PITTGOOGLE_DECODE_MAX_DECODED_BYTES"]

    @classmethod
    def from_settings(cls) -> DecodeLimits:
        def positive(name: str) -> int:
            value = conf.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                from tom_pittgoogle.exceptions import ConfigurationError

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
            max_decoded_bytes=positive("PITTGOOGLE_DECODE_MAX_DECODED_BYTES"),
        )


#: The limits a batch of packets is read with (see :func:`limits_for_batch`); None: read the settings per packet.
_batch_limits: contextvars.ContextVar[DecodeLimits | None] = contextvars.ContextVar("decode_limits", default=None)


@contextlib.contextmanager
def limits_for_batch(limits: DecodeLimits | None = None):
    """Decode the packets of a batch (a pull) with ``limits``, by default the settings read once now.

    Reading the six ``PITTGOOGLE_DECODE_*`` settings costs more than a packet's header; a stream reads them once
    per batch, so a changed setting holds from the next batch.
    """
    token = _batch_limits.set(limits or DecodeLimits.from_settings())
    try:
        yield
    finally:
        _batch_limits.reset(token)


#: Codecs this module can stream with a cap on the output (others, even if listed in the setting, are refused).
_STREAMING_CODECS = {
    "deflate": lambda: zlib.decompressobj(-15),
    "bzip2": bz2.BZ2Decompressor,
    "xz": lzma.LZMADecompressor,
}


def _decompress(block: bytes, codec: str, limits: DecodeLimits, readable: int | None = None) -> bytes:
    """``block`` decompressed with ``codec``, streamed and stopped past ``max_decompressed_bytes`` or past
    ``readable``, the most bytes of its writer schema that stay within ``max_decoded_bytes`` once read."""
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
        out = decompressor.decompress(block, min(cap, readable if readable is not None else cap) + 1)
    except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError) as error:
        raise DecodeError(f"Avro block does not decompress with codec {codec!r}: {error}") from None
    if readable is not None and readable < cap and len(out) > readable:
        raise DecodeError(
            f"Avro block ({codec}, {len(block)} bytes) decompresses to more than {readable} bytes, the most a record "
            f"of its writer schema may be to take at most PITTGOOGLE_DECODE_MAX_DECODED_BYTES "
            f"({limits.max_decoded_bytes / 2**20:.0f} MiB) once read: refused"
        )
    if len(out) > cap:
        raise DecodeError(
            f"Avro block ({codec}, {len(block)} bytes) decompresses to more than "
            f"PITTGOOGLE_DECODE_MAX_DECOMPRESSED_BYTES ({cap} bytes): refused"
        )
    return out


def check_limits(value: Any, limits: DecodeLimits, what: str = "packet", *, field_names: bool = True) -> None:
    """Raise :class:`DecodeError` if ``value`` (a decoded record) nests too deep or holds too long an array or
    string. ``field_names``: whether to check the length of field names too (an Avro record's come from its checked
    writer schema).

    Depth-first with a stack of iterators, one per open container: the walk holds memory for the current path only
    (at most ``max_depth`` entries), not for every container of the record, so it adds nothing to a packet's
    proven memory bound; and it is iterative, so a record nested deeper than Python's recursion limit is checked.
    """
    max_string, max_items, max_depth = limits.max_string_bytes, limits.max_array_items, limits.max_depth
    if not isinstance(value, (Mapping, list, tuple)):
        if isinstance(value, (str, bytes, bytearray)) and len(value) > max_string:
            raise DecodeError(f"{what} is {len(value)} long, more than PITTGOOGLE_DECODE_MAX_STRING_BYTES")
        return
    if len(value) > max_items:
        _too_many(what, [], len(value), max_items)
    stack: list[Any] = [_entries(value)]
    keys: list[Any] = []  # the key of each open container but the first: the path to report
    while stack:
        # Exact type tests: JSON and the readers give plain dicts, lists, str and bytes, and this loop visits every
        # value of every packet that is walked (isinstance against the abstract Mapping costs three times as much).
        for key, child in stack[-1]:
            kind = type(child)
            if kind in _SCALARS:
                pass
            elif kind is str or kind is bytes or kind is bytearray:
                if len(child) > max_string:
                    _too_long(what, _path([*keys, key]), len(child), max_string)
            elif kind is dict or kind is list or isinstance(child, (Mapping, list, tuple)):
                if len(stack) + 1 > max_depth:
                    raise DecodeError(f"{what}: nested more than PITTGOOGLE_DECODE_MAX_DEPTH ({max_depth}) deep at "
                                      f"{_path([*keys, key])}")
                if len(child) > max_items:
                    _too_many(what, [*keys, key], len(child), max_items)
                if field_names and type(key) is str and len(key) > max_string:
                    _too_long(what, f"a field name in {_path(keys) or 'the packet'}", len(key), max_string)
                stack.append(_entries(child))
                keys.append(key)
                break
            if field_names and type(key) is str and len(key) > max_string:
                _too_long(what, f"a field name in {_path(keys) or 'the packet'}", len(key), max_string)
        else:
            stack.pop()
            if keys:
                keys.pop()


_SCALARS = frozenset({int, float, bool, type(None)})


def _entries(node: Any) -> Any:
    """An iterator of ``(key, child)`` over a dict's items or a list's items with their indexes."""
    return iter(node.items()) if type(node) is dict or isinstance(node, Mapping) else enumerate(node)


def _too_long(what: str, where: str, size: int, limit: int) -> None:
    raise DecodeError(f"{what}: {where} is {size} long, more than PITTGOOGLE_DECODE_MAX_STRING_BYTES ({limit})")


def _too_many(what: str, keys: list, size: int, limit: int) -> None:
    raise DecodeError(f"{what}: {_path(keys) or 'the packet'} holds {size} items, more than "
                      f"PITTGOOGLE_DECODE_MAX_ARRAY_ITEMS ({limit})")


def _path(keys: list) -> str:
    """``a.b[3].c`` from the keys ``["a", "b", 3, "c"]`` (cut to 200 characters)."""
    path = ""
    for key in keys:
        path = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
        if len(path) > 200:
            return path[:200]
    return path


#: cavro's options for the alert schemas: ZTF's declare ``"default": null`` on non-null fields (invalid Avro that
#: fastavro accepts), and records are read as plain dicts, as fastavro gives them.
_CAVRO_OPTIONS = (
    cavro.DEFAULT_OPTIONS.replace(allow_invalid_default_values=True, record_decodes_to_dict=True)
    if cavro is not None else None
)
#: What a reader raises on bytes that do not match its schema (anything else is still a DecodeError, just vaguer).
_READ_ERRORS = (EOFError, KeyError, ValueError, StopIteration, zlib.error, IndexError, TypeError, OverflowError,
                *((cavro.CavroException,) if cavro is not None else ()))


@dataclass(frozen=True)
class RecordReader:
    """How the records of one writer schema are read, chosen once for the schema, with the schema's proven
    :class:`~tom_pittgoogle.core.alerts.schema_bounds.SchemaBounds` (its records' deepest nesting, widest record and
    the memory a record of a given size can take once read)."""

    read: Any  # bytes -> record
    codec: str  # "cavro" or "fastavro"
    bounds: SchemaBounds

    def check_cost(self, encoded_bytes: int, limits: DecodeLimits) -> None:
        """Raise :class:`DecodeError`, before anything is read, if a record of ``encoded_bytes`` bytes of this schema
        could nest deeper than ``limits`` allow or take more memory once read (decoding time grows with it too)."""
        if self.bounds.depth > limits.max_depth:
            raise DecodeError(
                f"Avro writer schema nests {self.bounds.depth} deep, more than PITTGOOGLE_DECODE_MAX_DEPTH "
                f"({limits.max_depth})"
            )
        _check_decoded_bytes(self.bounds.decoded_bytes(encoded_bytes), encoded_bytes, "Avro", limits)

    def within_limits(self, block_size: int, limits: DecodeLimits) -> bool:
        """Whether every record of ``block_size`` bytes of this schema is surely within ``limits`` (its depth is
        checked before it is read), so the decoded record need not be walked."""
        return (
            self.bounds.widest <= limits.max_array_items
            and block_size <= limits.max_array_items
            and block_size <= limits.max_string_bytes
        )


#: Bytes of Python objects a byte of JSON can become at most (``[{},{},...]``: a dict and a list slot per 3 bytes,
#: with the list's growth), so that a JSON packet's memory is bounded before it is parsed.
JSON_DECODED_PER_BYTE = 32


def _check_decoded_bytes(bound: float, encoded_bytes: int, what: str, limits: DecodeLimits) -> None:
    if bound > limits.max_decoded_bytes:
        raise DecodeError(
            f"{what} packet of {encoded_bytes} bytes could take up to {bound / 2**20:.0f} MiB once read, more "
            f"than PITTGOOGLE_DECODE_MAX_DECODED_BYTES ({limits.max_decoded_bytes / 2**20:.0f} MiB): refused "
            "before reading"
        )


def record_reader(definition: Any, parsed: Any, bounds: SchemaBounds | None = None) -> RecordReader:
    """The fastest reader of ``definition`` (fastavro's ``parsed`` form given): cavro if it takes the schema.

    ``bounds``: the schema's, if already proven (:func:`schema_bounds` raises DecodeError for a schema that is
    never read, such as a recursive one)."""
    bounds = bounds or schema_bounds(definition)
    if _CAVRO_OPTIONS is not None:
        try:
            schema = cavro.Schema(definition, options=_CAVRO_OPTIONS)
        except Exception as error:  # noqa: BLE001 - any refusal: fastavro reads it
            logger.info("cavro refuses a writer schema (%s); reading it with fastavro", str(error)[:200])
        else:
            return RecordReader(schema.binary_decode, "cavro", bounds)
    return RecordReader(lambda block: fastavro.schemaless_reader(io.BytesIO(block), parsed), "fastavro", bounds)


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
        read the bytes; :func:`~tom_pittgoogle.core.alerts.surveys.lighten_alert` uses them. ``limits`` defaults to
        those of the batch being read (:func:`limits_for_batch`), else the settings. Nothing but
        :class:`DecodeError` leaves this method.
        """
        limits = limits or _batch_limits.get() or DecodeLimits.from_settings()
        where = f" from {topic}" if topic else ""
        try:
            record, proven = self._decode(data, where, limits)
            if not proven:
                # An Avro record's field names come from its writer schema, checked before use; JSON's from the data.
                check_limits(record, limits,
                             field_names=not isinstance(data, bytes) or data[:1] not in (b"O", b"\x00"))
            return record
        except DecodeError:
            raise
        except RecursionError:
            raise DecodeError(f"packet{where} is nested too deep to read") from None
        except Exception as error:  # a reader's bug on hostile bytes must not loop a subscription
            logger.debug("unexpected error decoding a packet%s", where, exc_info=True)
            raise DecodeError(f"unreadable packet{where}: {type(error).__name__}") from None

    def _decode(self, data: bytes, where: str, limits: DecodeLimits) -> tuple[dict, bool]:
        """The record, and whether its limits are already proven (from its schema and size)."""
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
            return self._decode_wire_format(data, where, limits)
        if data.lstrip()[:1] == b"{":
            _check_decoded_bytes(JSON_DECODED_PER_BYTE * len(data), len(data), "JSON", limits)
            return _decode_json(data, limits), False
        raise DecodeError(
            f"not an alert packet{where}: unrecognised leading bytes {data[:8]!r} ({len(data)} bytes), neither "
            "Avro (container file or Confluent wire format) nor JSON"
        )

    def lsst_schema(self, schema_id: int) -> Any:
        """The parsed (fastavro) Rubin alert schema with wire-format id ``schema_id`` (parsed once, then cached)."""
        return self.lsst_reader(schema_id)[1]

    def lsst_reader(self, schema_id: int) -> tuple[RecordReader, Any]:
        """The reader of the Rubin alert schema with wire-format id ``schema_id``, and its fastavro form."""
        found = self._lsst_schemas.get(schema_id)
        if found is None:
            definition, parsed = _load_lsst_schema(schema_id)
            found = (record_reader(definition, parsed), parsed)
            with self._lock:
                self._lsst_schemas[schema_id] = found
        return found

    def _decode_wire_format(self, data: bytes, where: str, limits: DecodeLimits) -> tuple[dict, bool]:
        schema_id = int.from_bytes(data[1:5], "big")
        reader = self.lsst_reader(schema_id)[0]
        reader.check_cost(len(data) - 5, limits)
        try:
            return reader.read(data[5:]), reader.within_limits(len(data) - 5, limits)
        except _READ_ERRORS as error:
            raise DecodeError(
                f"malformed Rubin/LSST packet{where} (Confluent wire-format Avro, {len(data)} bytes, schema id "
                f"{schema_id}): "
                f"{type(error).__name__}"
            ) from None

    def _writer_schema(self, schema_bytes: bytes, limits: DecodeLimits) -> RecordReader:
        key = (len(schema_bytes), schema_bytes[:64], schema_bytes[-64:])  # cheap; the full bytes are compared
        found = self._schemas.get(key)
        if found is not None and found[0] == schema_bytes:
            return found[1]
        # A schema is held to the depth and string limits; its size is bounded by the packet's.
        schema_limits = dataclasses.replace(limits, max_array_items=limits.max_packet_bytes)
        definition = _loads_bounded(schema_bytes, schema_limits, "Avro writer schema")
        bounds = schema_bounds(definition)  # before any reader sees it: a refused schema is never parsed
        try:
            parsed = fastavro.parse_schema(definition)
        except Exception as error:
            raise DecodeError(f"Avro header holds an invalid writer schema: {str(error)[:200]}") from None
        reader = record_reader(definition, parsed, bounds)
        with self._lock:
            if len(self._schemas) >= self._max:
                self._schemas.pop(next(iter(self._schemas)))
            self._schemas[key] = (bytes(schema_bytes), reader)
        return reader

    def _decode_avro_container(self, data: bytes, limits: DecodeLimits) -> tuple[dict, bool]:
        try:
            meta, position = _container_header(data)
            codec = meta.get("avro.codec", b"null").decode("ascii", "replace")
            if codec != "null" and codec not in limits.codecs:
                raise DecodeError(
                    f"Avro codec {codec[:40]!r} is not accepted (PITTGOOGLE_DECODE_CODECS allows "
                    f"{', '.join(limits.codecs)})"
                )
            reader = self._writer_schema(meta["avro.schema"], limits)
            position += 16  # the sync marker
            count, position = _read_long(data, position)
            size, position = _read_long(data, position)
            if count < 1:
                raise DecodeError("Avro container file holds no record")
            if size < 0 or size > len(data):
                raise DecodeError(f"truncated Avro packet: block of {size} bytes in a {len(data)}-byte packet")
            block = data[position:position + size]
            if len(block) != size:
                raise DecodeError(f"truncated Avro packet: block of {size} bytes, {len(block)} present")
            block = _decompress(block, codec, limits, reader.bounds.readable_bytes(limits.max_decoded_bytes))
            reader.check_cost(len(block), limits)
            return reader.read(block), reader.within_limits(len(block), limits)
        except DecodeError:
            raise
        except _READ_ERRORS as error:
            raise DecodeError(f"malformed Avro packet ({len(data)} bytes): {type(error).__name__}") from None


def _read_long(data: bytes, position: int) -> tuple[int, int]:
    """The zig-zag varint Avro long at ``position`` of ``data``, and the position after it."""
    result = shift = 0
    while True:
        if position >= len(data):
            raise EOFError("truncated Avro long")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise ValueError("Avro long longer than 10 bytes")


def _container_header(data: bytes) -> tuple[dict[str, bytes], int]:
    """An Avro container file's metadata map (after the 4-byte magic) and the position of its sync marker.

    Read by hand (it is a map of bytes, at most a few entries): fastavro's header reader costs more than the
    record's decode with cavro.
    """
    meta: dict[str, bytes] = {}
    position = len(AVRO_CONTAINER_MAGIC)
    while True:
        count, position = _read_long(data, position)
        if count == 0:
            return meta, position
        if count < 0:  # a block that gives its size in bytes too
            count = -count
            _, position = _read_long(data, position)
        for _ in range(count):
            key_size, position = _read_long(data, position)
            key = data[position:position + key_size]
            position += key_size
            value_size, position = _read_long(data, position)
            if key_size < 0 or value_size < 0 or position + value_size > len(data) or len(key) != key_size:
                raise EOFError("truncated Avro container header")
            meta[key.decode("utf-8")] = data[position:position + value_size]
            position += value_size


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
    definition = Schema.from_file(str(path)).definition
    return definition, fastavro.parse_schema(definition)


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
    :func:`~tom_pittgoogle.core.alerts.surveys.lighten_alert`, passing the same ``attributes``); raises only
    :class:`DecodeError`.
    """
    return _default_decoder.decode(data, topic, attributes)


def decode_alert_b64(
    data: str | bytes, topic: str | None = None, attributes: Mapping[str, Any] | None = None
) -> dict:
    """Decode a base64 packet, as the Pub/Sub REST API delivers ``message.data``."""
    try:
        raw = pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise DecodeError("message data is not valid base64") from None
    return decode_alert(raw, topic, attributes)
