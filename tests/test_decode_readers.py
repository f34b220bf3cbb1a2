"""The fast reader (cavro) gives exactly the records fastavro gives, on every real and sample packet of every ZTF
and LSST schema version; a schema it refuses is read by fastavro; the limits still hold when they are proven from
the schema instead of walked (issue 13)."""

from __future__ import annotations

import io
import math

import fastavro
import pytest
from lsst.alert.packet import Schema, get_schema_path

from tom_pittgoogle.core.alerts.decode import AlertDecoder, DecodeLimits, check_limits, lsst_schema_ids
from tom_pittgoogle.demo.sample_lsst import make_lsst_packets
from tom_pittgoogle.exceptions import DecodeError

from .conftest import SAMPLE_PACKETS
from .hostile_packets import container
from .hostile_packets import varint as _varint

LSST_PACKETS = make_lsst_packets(per_version=2)


def same(a, b, path="record") -> None:
    """Equal values of equal types, NaN equal to NaN (``==`` on dicts would take 1 for 1.0 and miss NaN)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys differ"
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: lengths differ"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{index}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


@pytest.mark.parametrize("name,packet", SAMPLE_PACKETS, ids=[name for name, _ in SAMPLE_PACKETS])
def test_every_ztf_packet_decodes_to_fastavros_record_with_cavro(name, packet):
    decoder = AlertDecoder()
    record = decoder.decode(packet)
    same(record, next(fastavro.reader(io.BytesIO(packet))))
    assert [reader.codec for _, reader in decoder._schemas.values()] == ["cavro"]


@pytest.mark.parametrize("name,packet", LSST_PACKETS, ids=[name for name, _ in LSST_PACKETS])
def test_every_lsst_packet_decodes_to_lsst_alert_packets_record_with_cavro(name, packet):
    schema_id = int.from_bytes(packet[1:5], "big")
    major, minor = divmod(schema_id, 100)
    reference = Schema.from_file(f"{get_schema_path(major, minor)}/lsst.v{major}_{minor}.alert.avsc")
    decoder = AlertDecoder()
    same(decoder.decode(packet), reference.deserialize(packet[5:]))
    assert decoder.lsst_reader(schema_id)[0].codec == "cavro"


def test_the_lsst_packets_cover_every_schema_version_from_7_0():
    assert {int.from_bytes(p[1:5], "big") for _, p in LSST_PACKETS} == set(lsst_schema_ids())
    assert min(lsst_schema_ids()) == 700


SCHEMA_CAVRO_REFUSES = {  # a record name with a hyphen: fastavro reads it, cavro refuses it
    "type": "record", "name": "alert-x", "fields": [
        {"name": "objectId", "type": "string"},
        {"name": "prv", "type": {"type": "array", "items": "double"}},
    ],
}


def test_a_schema_cavro_refuses_is_read_by_fastavro_with_the_same_record():
    record = {"objectId": "ZTF18abfkwnk", "prv": [1.5, float("nan"), -2.0]}
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(SCHEMA_CAVRO_REFUSES), [record])
    decoder = AlertDecoder()
    same(decoder.decode(out.getvalue()), record)
    assert [reader.codec for _, reader in decoder._schemas.values()] == ["fastavro"]


def test_a_deflated_packet_is_read_by_the_fast_reader_after_bounded_decompression():
    name, packet = SAMPLE_PACKETS[0]
    record = next(fastavro.reader(io.BytesIO(packet)))
    schema = fastavro.reader(io.BytesIO(packet)).writer_schema
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema), [record], codec="deflate")
    decoder = AlertDecoder()
    same(decoder.decode(out.getvalue()), record)
    assert [reader.codec for _, reader in decoder._schemas.values()] == ["cavro"]


RECURSIVE = {
    "type": "record", "name": "node", "fields": [
        {"name": "next", "type": ["null", "node"]},
    ],
}


def test_a_recursive_schema_is_refused_before_any_reader_sees_it_however_shallow_the_record():
    for block in (_varint(1) * 40 + _varint(0), _varint(0)):  # 40 nested nodes; none
        with pytest.raises(DecodeError, match=r"recursive \(node -> node\)"):
            AlertDecoder().decode(container(RECURSIVE, block), limits=DecodeLimits(max_depth=32))


@pytest.mark.parametrize("name,packet", SAMPLE_PACKETS[:3] + LSST_PACKETS[:2],
                         ids=[name for name, _ in SAMPLE_PACKETS[:3] + LSST_PACKETS[:2]])
def test_limits_proven_from_the_schema_agree_with_walking_the_record(name, packet):
    record = AlertDecoder().decode(packet)
    for limits in (DecodeLimits(), DecodeLimits(max_depth=2), DecodeLimits(max_array_items=3),
                   DecodeLimits(max_string_bytes=8)):
        try:
            check_limits(record, limits, field_names=False)
            walked = None
        except DecodeError as error:
            walked = str(error)
        try:
            AlertDecoder().decode(packet, limits=limits)
            decoded = None
        except DecodeError as error:
            decoded = str(error)
        assert (walked is None) == (decoded is None), (limits, walked, decoded)
