"""Whatever bytes arrive, decode + lighten give an alert that is safe to store, or a DecodeError: nothing else
(issue 11 item 2: any other exception looped a subscription forever)."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SAMPLE_PACKETS
from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
from tom_pittgoogle.demo import pittgoogle_formats as pgf
from tom_pittgoogle.exceptions import DecodeError

#: A packet of every topic shape, plus the real ZTF packets and generated ones.
PACKETS: list[tuple[bytes, dict[str, str]]] = [(packet, {}) for _, packet in SAMPLE_PACKETS[:4]] + [
    message for topic, variants in pgf.TOPICS.items() for variant in variants
    for message in pgf.messages(topic, 1, seed=17, variant=variant)
]
JSON_PACKETS = [json.loads(data) for data, _ in PACKETS if data[:1] == b"{"]

PROPERTY = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(
    max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
attributes = st.dictionaries(st.text(max_size=40), st.text(max_size=200), max_size=8) | st.sampled_from(
    [attributes for _, attributes in PACKETS])


def assert_only_an_alert_or_a_decode_error(data: bytes, message_attributes: dict) -> None:
    try:
        alert = lighten_alert(decode_alert(data, "fuzz", message_attributes), attributes=message_attributes)
    except DecodeError as error:
        assert str(error)
        return
    # What comes out is storable and safe to show.
    json.dumps(alert, allow_nan=False)
    assert alert["survey"] in ("ztf", "lsst")
    if alert["survey"] == "ztf":
        assert re.fullmatch(r"ZTF[0-9]{2}[a-z]{7}", alert["object_id"])
    else:
        assert re.fullmatch(r"[1-9][0-9]{0,18}", alert["object_id"])
    assert re.fullmatch(r"[1-9][0-9]{0,18}", alert["source_id"])
    assert 0 <= alert["ra"] < 360 and -90 <= alert["dec"] <= 90 and math.isfinite(alert["jd"])
    assert len(alert["band"]) <= 16
    assert all(isinstance(v, float) and math.isfinite(v) for v in alert["scores"].values())


@st.composite
def mutated_packets(draw):
    data, message_attributes = draw(st.sampled_from(PACKETS))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "repeat"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if operation == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "truncate":
            del data[position:]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del data[position:position + draw(st.integers(1, 64))]
        elif operation == "repeat":
            data[position:position] = data[position:position + draw(st.integers(1, 64))] * draw(st.integers(2, 50))
    return bytes(data), message_attributes


@PROPERTY
@given(mutated_packets())
def test_mutated_real_packets_decode_or_raise_a_decode_error(packet):
    assert_only_an_alert_or_a_decode_error(*packet)


@PROPERTY
@given(json_values, attributes)
def test_random_json_decodes_or_raises_a_decode_error(value, message_attributes):
    assert_only_an_alert_or_a_decode_error(json.dumps(value).encode("utf-8", "surrogatepass"), message_attributes)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            yield from _paths(child, (*prefix, index))


@st.composite
def alerts_with_a_part_replaced(draw):
    """A real topic's JSON with one value anywhere in it replaced by random JSON (a band as a list, prv entries
    that are not records, text where a number belongs...)."""
    packet = json.loads(json.dumps(draw(st.sampled_from(JSON_PACKETS))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(packet))[1:]))
        node = packet
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = draw(json_values)
    return packet


@PROPERTY
@given(alerts_with_a_part_replaced(), attributes)
def test_real_alerts_with_any_part_replaced_decode_or_raise_a_decode_error(packet, message_attributes):
    data = json.dumps(packet).encode("utf-8", "surrogatepass")
    assert_only_an_alert_or_a_decode_error(data, message_attributes)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00\x03\xe8", b"Obj\x01", b"{", b"[]", b"null", b"{}",
                                  b'{"alert_lite": 5}', b'{"alert_lite": {"alert_lite": {"alert_lite": {}}}}',
                                  b"{\"a\": \"\\ud800\"}", b"\xff" * 50, b'{"a": 1e999999}',
                                  b'{"a": ' + b"9" * 5000 + b"}"])
def test_edge_bytes_decode_or_raise_a_decode_error(data):
    assert_only_an_alert_or_a_decode_error(data, {})
