"""Alert packets: decoded once, exactly as fastavro's own reader decodes them; bad packets say what they are."""

from __future__ import annotations

import io
import json
import math

import fastavro
import pytest

from tom_pittgoogle.core.alerts import AlertDecoder, decode_alert, decode_alert_b64, lighten_alert
from tom_pittgoogle.core.alerts import decode as decode_module
from tom_pittgoogle.exceptions import DecodeError


def reference_decode(packet: bytes) -> dict:
    return next(iter(fastavro.reader(io.BytesIO(packet))))


def test_every_packet_decodes_to_the_record_fastavro_reader_gives(packet):
    assert decode_alert(packet) == reference_decode(packet)


def test_base64_packets_as_rest_delivers_them_decode_the_same(packet):
    import base64

    assert decode_alert_b64(base64.b64encode(packet)) == reference_decode(packet)


def test_each_distinct_writer_schema_is_parsed_once(packets, monkeypatch):
    calls = []
    real_parse = fastavro.parse_schema
    monkeypatch.setattr(decode_module.fastavro, "parse_schema", lambda s, *a, **k: calls.append(1) or real_parse(s))
    decoder = AlertDecoder()
    for _ in range(3):
        for packet in packets:
            decoder.decode(packet)
    distinct_headers = {reference_decode_header(packet) for packet in packets}
    assert len(calls) == len(distinct_headers)


def reference_decode_header(packet: bytes) -> bytes:
    return fastavro.reader(io.BytesIO(packet)).metadata["avro.schema"].encode()


def test_lightened_alert_has_common_fields_and_the_originals_ztf_fields(packet):
    record = reference_decode(packet)
    alert = lighten_alert(record)
    candidate = record["candidate"]
    assert alert["survey"] == "ztf"
    assert alert["object_id"] == alert["objectId"] == record["objectId"]
    assert alert["source_id"] == str(record["candid"]) and alert["candid"] == record["candid"]
    assert alert["jd"] == candidate["jd"] and alert["ra"] == candidate["ra"] and alert["dec"] == candidate["dec"]
    assert alert["mag"] == alert["magpsf"] == candidate["magpsf"]
    assert alert["mag_err"] == candidate["sigmapsf"]
    assert alert["band"] == {1: "g", 2: "r", 3: "i"}[candidate["fid"]]
    assert alert["classtar"] == candidate["classtar"]
    json.dumps(alert, allow_nan=False)  # storable as jsonb and cacheable


def test_nan_values_become_null_so_the_alert_can_be_stored_as_json(packet):
    record = reference_decode(packet)
    record["candidate"]["magpsf"] = float("nan")
    record["candidate"]["classtar"] = float("inf")
    alert = lighten_alert(record)
    assert alert["mag"] is None and alert["magpsf"] is None and alert["classtar"] is None
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in alert.values())


def foreign_avro_packet() -> bytes:
    schema = {"type": "record", "name": "weather", "fields": [{"name": "station", "type": "string"}]}
    out = io.BytesIO()
    fastavro.writer(out, schema, [{"station": "Pittsburgh"}])
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"this is not an alert", "unrecognised"),
        (b'{"not": "closed"', "JSON"),
        # Schema id 701 is Rubin's 7.1, but the record is cut short.
        (b"\x00\x00\x00\x02\xbdrest", "malformed Rubin/LSST packet .*wire-format.*schema id 701"),
        (b"\x00\x00\x00\x00\x05rest", "schema id 5: not a Rubin alert schema"),
    ],
)
def test_malformed_packets_raise_decode_error_saying_what_was_seen(data, says):
    with pytest.raises(DecodeError, match=says):
        decode_alert(data)


def test_truncated_avro_packet_raises_decode_error(packet):
    with pytest.raises(DecodeError):
        decode_alert(packet[: len(packet) // 2])


def test_avro_of_another_schema_is_not_taken_for_an_alert():
    record = decode_alert(foreign_avro_packet())
    with pytest.raises(DecodeError, match="not an alert of a known survey"):
        lighten_alert(record)


def test_invalid_base64_raises_decode_error():
    with pytest.raises(DecodeError, match="base64"):
        decode_alert_b64("***not base64***")
