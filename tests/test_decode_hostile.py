"""A packet's own writer schema cannot crash, bloat or stall the decoder: recursive schemas are refused, zero-size
items are found behind any name or namespace, and the memory a record takes once read is proven before it is read.

The audit's packets run in a child process under an address-space and CPU limit (on the previous decoder they
ended in a segfault, gigabytes or minutes of CPU); the bound's soundness is checked against what decoding really
allocates, on the real packets and on the worst shapes per byte.
"""

from __future__ import annotations

import io
import json
import re
import tracemalloc

import fastavro
import pytest

from tom_pittgoogle.core.alerts import decode_alert, lighten_alert
from tom_pittgoogle.core.alerts.decode import JSON_DECODED_PER_BYTE, AlertDecoder, DecodeLimits, _container_header
from tom_pittgoogle.core.alerts.schema_bounds import schema_bounds
from tom_pittgoogle.demo import pittgoogle_formats as pgf
from tom_pittgoogle.exceptions import DecodeError

from .conftest import SAMPLE_PACKETS
from .hostile_packets import EMPTY_ARRAYS, EMPTY_MAPS, ONE_FIELD, bombs, container, decode_in_child, varint

BOMBS = bombs()
#: What each bomb's DecodeError says.
REASONS = {
    "recursive record (segfault)": r"recursive \(Node -> Node\)",
    "ns.Empty x 10^8": r"array of ns\.Empty: items that take no bytes",
    "ns.Zero x 5*10^7": r"array of ns\.Zero: items that take no bytes",
    "32 MiB of one-field records, deflated": r"decompresses to more than \d+ bytes, the most a record of its "
                                             r"writer schema may be to take at most "
                                             r"PITTGOOGLE_DECODE_MAX_DECODED_BYTES",
    "32 MiB of empty arrays, deflated": "PITTGOOGLE_DECODE_MAX_DECODED_BYTES",
    "32 MiB of empty maps, deflated": "PITTGOOGLE_DECODE_MAX_DECODED_BYTES",
    "10 MiB of one-field records, uncompressed": r"could take up to \d+ MiB once read, more than "
                                                 r"PITTGOOGLE_DECODE_MAX_DECODED_BYTES",
}


def test_the_packets_are_the_audits():
    assert len(BOMBS["recursive record (segfault)"]) == 279
    assert all(len(BOMBS[name]) < 300 for name in ("ns.Empty x 10^8", "ns.Zero x 5*10^7"))
    assert all(len(packet) < 40_000 for name, packet in BOMBS.items() if "deflated" in name)


@pytest.mark.parametrize("name", list(BOMBS))
def test_each_bomb_ends_in_a_decode_error_in_a_child_limited_to_1_gib_and_10_cpu_seconds(name, tmp_path):
    result = decode_in_child(BOMBS[name], tmp_path, memory_bytes=1 << 30, cpu_seconds=10)
    print(f"\n{name}: {len(BOMBS[name])} bytes -> {result.outcome[:100]}; peak {result.peak_mib:.0f} MiB, "
          f"CPU {result.cpu_s:.3f} s")
    assert result.returncode == 0, result
    assert result.outcome.startswith("DecodeError:"), result
    assert re.search(REASONS[name], result.outcome), result.outcome


# --- names and namespaces resolved as Avro resolves them ------------------------------------------------------

ZERO_TYPES = {
    "fixed of size 0": {"type": "fixed", "name": "Zero", "size": 0},
    "empty record": {"type": "record", "name": "Zero", "fields": []},
    "record of nulls": {"type": "record", "name": "Zero", "fields": [{"name": "a", "type": "null"}]},
    "record holding an empty record": {"type": "record", "name": "Zero", "fields": [
        {"name": "a", "type": {"type": "record", "name": "Inner", "fields": []}}]},
}


def declared_in(namespace_style: str, declared: dict) -> tuple[dict, str, str]:
    """(a declaring record holding ``declared``, its full name, the namespace references are made from)."""
    declared = dict(declared)
    if namespace_style == "inherited":  # the record's namespace, not written on the type
        return {"type": "record", "name": "Outer", "namespace": "ns", "fields": [
            {"name": "d", "type": declared}]}, f"ns.{declared['name']}", "ns"
    if namespace_style == "explicit":
        declared["namespace"] = "other"
        return {"type": "record", "name": "Outer", "namespace": "ns", "fields": [
            {"name": "d", "type": declared}]}, f"other.{declared['name']}", "ns"
    if namespace_style == "dotted name":
        declared["name"] = f"a.b.{declared['name']}"
        return {"type": "record", "name": "Outer", "fields": [{"name": "d", "type": declared}]}, declared["name"], ""
    return {"type": "record", "name": "Outer", "fields": [{"name": "d", "type": declared}]}, declared["name"], ""


#: (namespace style, reference) pairs: a short name reaches only a type of the enclosing namespace.
REFERENCES = [(style, reference) for style in ("none", "inherited", "explicit", "dotted name")
              for reference in ("full name", "short name", "wrapped", "in a union branch")
              if reference != "short name" or style in ("none", "inherited")]


@pytest.mark.parametrize("zero", list(ZERO_TYPES))
@pytest.mark.parametrize(("namespace_style", "reference"), REFERENCES)
def test_zero_size_items_are_found_behind_every_name_and_namespace(zero, namespace_style, reference):
    outer, full, namespace = declared_in(namespace_style, ZERO_TYPES[zero])
    name = full.rpartition(".")[2] if reference == "short name" else full
    items = {"wrapped": {"type": name}, "in a union branch": [name]}.get(reference, name)
    outer["fields"].append({"name": "items", "type": {"type": "array", "items": items}})
    if reference == "in a union branch":  # the branch index takes a byte: bounded, so read
        assert schema_bounds(outer).per_byte > 0
        return
    with pytest.raises(DecodeError, match="items that take no bytes"):
        schema_bounds(outer)
    with pytest.raises(DecodeError, match="items that take no bytes"):
        decode_alert(container(outer, varint(10**9) + b"\x00"))


@pytest.mark.parametrize("how", ["union", "array", "map", "through another record", "qualified reference",
                                 "inherited namespace", "wrapped reference", "alias"])
def test_recursion_is_refused_whatever_path_it_takes(how):
    node = {"type": "record", "name": "Node", "fields": []}
    ref = "Node"
    if how in ("qualified reference", "inherited namespace"):
        node["namespace"] = "ns"
        ref = "ns.Node" if how == "qualified reference" else "Node"
    field_type = {
        "union": ["null", ref], "array": {"type": "array", "items": ref}, "map": {"type": "map", "values": ref},
        "through another record": ["null", {"type": "record", "name": "Other", "fields": [
            {"name": "back", "type": {"type": "array", "items": ref}}]}],
        "wrapped reference": ["null", {"type": ref}],
        "alias": ["null", "Old"],
    }.get(how, ["null", ref])
    if how == "alias":
        node["aliases"] = ["Old"]
    node["fields"].append({"name": "next", "type": field_type})
    with pytest.raises(DecodeError, match="recursive"):
        schema_bounds(node)
    with pytest.raises(DecodeError, match="recursive"):
        decode_alert(container(node, b"\x00"))


@pytest.mark.parametrize("schema,says", [
    ({"type": "record", "name": "R", "fields": [{"name": "a", "type": "Missing"}]}, "does not define"),
    ({"type": "record", "name": "R", "fields": [{"name": "a", "type": {"type": "fixed", "name": "F", "size": 1}},
                                                {"name": "b", "type": {"type": "fixed", "name": "F", "size": 2}}]},
     "defines 'F' twice"),
    ({"type": "record", "name": "R", "fields": [{"name": "a", "type": {"type": "bytes", "logicalType": "decimal",
                                                                        "precision": 10**8}}]}, "decimal"),
    ({"type": "record", "name": "R", "fields": [{"name": "a", "type": []}]}, "union without branches"),
    ({"type": "record", "name": "R", "fields": "none"}, "without a list of fields"),
])
def test_schemas_no_reader_should_see_are_refused_with_the_reason(schema, says):
    with pytest.raises(DecodeError, match=says):
        decode_alert(container(schema, b"\x00"))


def test_a_schema_nested_deeper_than_the_setting_is_refused_before_reading(settings):
    # Nested by reference, so the schema's JSON itself is shallow: each type holds the one declared before it.
    schema = [{"type": "record", "name": "R0", "fields": [{"name": "x", "type": "int"}]}] + [
        {"type": "record", "name": f"R{level}", "fields": [{"name": "x", "type": f"R{level - 1}"}]}
        for level in range(1, 12)]
    settings.PITTGOOGLE_DECODE_MAX_DEPTH = 8
    with pytest.raises(DecodeError, match="nests 12 deep, more than PITTGOOGLE_DECODE_MAX_DEPTH"):
        decode_alert(container(schema, b"\x00"))


# --- the memory bound: a setting, and sound ---------------------------------------------------------------------


def test_a_packet_whose_bound_is_over_the_setting_is_refused_and_one_under_it_read(settings):
    reader = fastavro.reader(io.BytesIO(SAMPLE_PACKETS[0][1]))
    record, schema = next(reader), reader.writer_schema
    block = io.BytesIO()
    fastavro.schemaless_writer(block, fastavro.parse_schema(schema), record)
    packet = container(schema, block.getvalue())
    bound = schema_bounds(schema).decoded_bytes(len(block.getvalue()))
    settings.PITTGOOGLE_DECODE_MAX_DECODED_BYTES = int(bound * 0.9)
    with pytest.raises(DecodeError, match="PITTGOOGLE_DECODE_MAX_DECODED_BYTES"):
        decode_alert(packet)
    settings.PITTGOOGLE_DECODE_MAX_DECODED_BYTES = int(bound * 1.1)
    assert decode_alert(packet)["candid"] == record["candid"]


def test_json_is_held_to_the_same_setting(settings):
    data, _ = pgf.messages("lsst-alerts-json", 1, seed=3)[0]
    settings.PITTGOOGLE_DECODE_MAX_DECODED_BYTES = JSON_DECODED_PER_BYTE * len(data) - 1
    with pytest.raises(DecodeError, match="JSON packet of .* PITTGOOGLE_DECODE_MAX_DECODED_BYTES"):
        decode_alert(data)
    settings.PITTGOOGLE_DECODE_MAX_DECODED_BYTES = JSON_DECODED_PER_BYTE * len(data)
    assert lighten_alert(decode_alert(data))["survey"] == "lsst"


def test_real_packets_are_bounded_well_under_the_default():
    limit = DecodeLimits().max_decoded_bytes
    for name, packet in SAMPLE_PACKETS:
        meta = _container_header(packet)[0]
        bound = schema_bounds(json.loads(meta["avro.schema"])).decoded_bytes(len(packet))
        assert bound < limit / 8, (name, bound)


def allocated(decode, data: bytes) -> tuple[int, object]:
    """Peak bytes allocated while ``decode(data)`` runs, with its result (kept alive while measured)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = decode(data)
        return tracemalloc.get_traced_memory()[1] - before, result
    finally:
        tracemalloc.stop()


def _words(count: int) -> bytes:
    """``count`` map entries with distinct 3-byte keys, each value an int."""
    return b"".join(varint(3) + f"{i:03x}"[-3:].encode() + b"\x02" for i in range(count))


WORST_SHAPES = {
    "one-field records": (ONE_FIELD, varint(200_000) + b"\x00" * 200_000 + b"\x00"),
    "empty arrays": (EMPTY_ARRAYS, varint(200_000) + b"\x00" * 200_000 + b"\x00"),
    "empty maps": (EMPTY_MAPS, varint(200_000) + b"\x00" * 200_000 + b"\x00"),
    "ints": ({"type": "record", "name": "R", "fields": [{"name": "a", "type": {"type": "array", "items": "long"}}]},
             varint(200_000) + b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01" * 200_000 + b"\x00"),
    "nullable doubles": ({"type": "record", "name": "R", "fields": [{"name": "a", "type": {
        "type": "array", "items": ["null", "double"]}}]},
        varint(100_000) + (b"\x02" + b"\x01" * 8) * 100_000 + b"\x00"),
    "short strings": ({"type": "record", "name": "R", "fields": [{"name": "a", "type": {
        "type": "array", "items": "string"}}]}, varint(200_000) + b"\x02a" * 200_000 + b"\x00"),
    "wide characters": ({"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]},
                        varint(4 + 400_000) + "\U0001F600".encode() + b"a" * 400_000),
    "map entries": ({"type": "record", "name": "R", "fields": [{"name": "a", "type": {
        "type": "map", "values": "int"}}]}, varint(4096) + _words(4096) + b"\x00"),
}


@pytest.mark.parametrize("shape", list(WORST_SHAPES))
def test_the_proven_bound_covers_what_decoding_allocates_for_the_worst_shapes(shape):
    schema, block = WORST_SHAPES[shape]
    packet = container(schema, block)
    wide = DecodeLimits(max_array_items=10**7, max_decoded_bytes=1 << 40)  # the bound is what is in question
    used, record = allocated(lambda data: AlertDecoder().decode(data, limits=wide), packet)  # noqa: F841
    bound = schema_bounds(schema).decoded_bytes(len(block))
    print(f"\n{shape}: {len(block)} bytes -> {used / 2**20:.1f} MiB allocated, bound {bound / 2**20:.1f} MiB")
    assert used <= bound, (shape, used, bound)


@pytest.mark.parametrize("shape", [b"[" + b"{}," * 100_000 + b"{}]", b"[" + b"[]," * 100_000 + b"[]]",
                                   b"[" + b'"a",' * 100_000 + b'"a"]', b"[" + b"1.5," * 100_000 + b"1.5]"],
                         ids=["dicts", "lists", "strings", "floats"])
def test_the_json_bound_covers_what_parsing_allocates(shape):
    data = b'{"a": ' + shape + b"}"
    wide = DecodeLimits(max_array_items=10**7, max_decoded_bytes=1 << 40)
    used, record = allocated(lambda data: AlertDecoder().decode(data, limits=wide), data)  # noqa: F841
    assert used <= JSON_DECODED_PER_BYTE * len(data), (used, len(data))


def test_the_real_packets_allocate_within_their_bound():
    decoder = AlertDecoder()
    for name, packet in SAMPLE_PACKETS + [(t, m) for t in ("lsst-alerts",) for m, _ in pgf.messages(t, 3, seed=5)]:
        decoder.decode(packet)  # the schema parsed and cached first
        used, record = allocated(decoder.decode, packet)  # noqa: F841
        if packet[:1] == b"\x00":
            bound = decoder.lsst_reader(int.from_bytes(packet[1:5], "big"))[0].bounds.decoded_bytes(len(packet))
        else:
            meta = _container_header(packet)[0]
            bound = schema_bounds(json.loads(meta["avro.schema"])).decoded_bytes(len(packet))
        assert used <= bound, (name, used, bound)


def test_the_limit_setting_must_be_a_positive_number(settings):
    from tom_pittgoogle.exceptions import ConfigurationError

    settings.PITTGOOGLE_DECODE_MAX_DECODED_BYTES = 0
    with pytest.raises(ConfigurationError, match="PITTGOOGLE_DECODE_MAX_DECODED_BYTES"):
        decode_alert(b"{}")


def test_a_good_recursive_looking_but_finite_schema_is_read():
    # The same name used twice in separate namespaces is two types, not a cycle.
    schema = {"type": "record", "name": "Node", "namespace": "a", "fields": [
        {"name": "child", "type": ["null", {"type": "record", "name": "Node", "namespace": "b", "fields": [
            {"name": "x", "type": "int"}]}]}]}
    assert schema_bounds(schema).depth == 2
    assert decode_alert(container(schema, b"\x02\x04")) == {"child": {"x": 2}}
