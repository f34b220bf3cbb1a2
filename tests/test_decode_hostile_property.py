"""Generated hostile writer schemas never end the decoder by a signal or a limit (the second audit's property).

Hypothesis builds Avro packets whose schemas recurse through unions, arrays and maps, or hold zero-size items (a
fixed of size 0, an empty record, a record of nulls, null) or items of one byte (one-field records, empty arrays
and maps, ints) behind named, qualified and inherited-namespace references, with declared counts of 10^6 to 10^9
and blocks that hold up to 32 MiB of items. Each batch is decoded in a child process limited to 1 GiB of address
space and 10 s of CPU in all: every packet must end as a decoded record or a DecodeError (never one that says the
memory ran out), and the child must exit on its own.
"""

from __future__ import annotations

import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .hostile_packets import container, decode_batch_in_child, deflate, repeated_deflate, varint

PROPERTY = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

#: How a named type is declared and referred to: (namespace on the outer record, namespace written on the type,
#: whether the type's name is dotted, whether references use the full name).
STYLES = st.tuples(st.sampled_from([None, "ns"]), st.sampled_from([None, "other"]), st.booleans(), st.booleans())


def named(kind_fields: dict, name: str, style: tuple) -> tuple[dict, str, dict]:
    """(the declaration, the name a reference uses, the outer record's extra keys)."""
    outer_ns, own_ns, dotted, full_reference = style
    declared = {**kind_fields, "name": f"a.b.{name}" if dotted else name}
    if own_ns and not dotted:
        declared["namespace"] = own_ns
    space = "a.b" if dotted else own_ns or outer_ns
    full = f"{space}.{name}" if space else name
    # A short name reaches the type only from its own namespace (the outer record's).
    short_reaches = space == outer_ns or not space and not outer_ns
    reference = name if short_reaches and not full_reference else full
    return declared, reference, ({"namespace": outer_ns} if outer_ns else {})


def wrap(reference, how: str):
    return {
        "union": ["null", reference],
        "array": {"type": "array", "items": reference},
        "map": {"type": "map", "values": reference},
        "wrapped": {"type": reference},
        "array in union": ["null", {"type": "array", "items": reference}],
        "map of arrays": {"type": "map", "values": {"type": "array", "items": reference}},
    }[how]


WRAPS = st.sampled_from(["union", "array", "map", "wrapped", "array in union", "map of arrays"])
#: 10^6 to 10^9, spread over the orders of magnitude (a plain range would mostly draw its ends).
COUNTS = st.builds(lambda exponent, mantissa: min(10**9, mantissa * 10**exponent), st.integers(6, 8),
                   st.integers(1, 10))


def block_of(count: int, unit: bytes, fill: bool, codec: str) -> tuple[bytes, str]:
    """One array block declaring ``count`` items, holding them (up to 32 MiB of ``unit``) or not, then the end."""
    held = min(count, (32 << 20) // len(unit) - 16) if fill else 0
    head, tail = varint(count), b"\x00"
    if codec == "deflate":
        return repeated_deflate(unit, held, head, tail), "deflate"
    held = min(held, (8 << 20) // len(unit))  # under the packet size limit
    return head + unit * held + tail, "null"


@st.composite
def recursive_packets(draw) -> tuple[bytes, bool]:
    style = draw(STYLES)
    node, reference, outer = named({"type": "record", "fields": []}, "Node", style)
    path = draw(WRAPS)
    through_other = draw(st.booleans())
    inner = wrap(reference, path)
    if through_other:
        inner = ["null", {"type": "record", "name": "Other", "fields": [{"name": "back", "type": inner}]}]
    node["fields"].append({"name": "next", "type": inner})
    schema = {"type": "record", "name": "Outer", **outer, "fields": [{"name": "n", "type": node}]}
    depth = draw(st.integers(min_value=1, max_value=100_000))
    if draw(st.booleans()):
        return container(schema, repeated_deflate(b"\x02", depth, b"", b"\x00"), codec="deflate"), True
    return container(schema, b"\x02" * depth + b"\x00"), True


ZERO = st.sampled_from([
    {"type": "fixed", "size": 0},
    {"type": "record", "fields": []},
    {"type": "record", "fields": [{"name": "a", "type": "null"}, {"name": "b", "type": "null"}]},
    {"type": "record", "fields": [{"name": "e", "type": {"type": "record", "name": "E", "fields": []}}]},
])
CHEAP = st.sampled_from([
    ({"type": "record", "fields": [{"name": "x", "type": "int"}]}, b"\x00"),
    ({"type": "record", "fields": [{"name": "x", "type": {"type": "array", "items": "int"}}]}, b"\x00"),
    ({"type": "record", "fields": [{"name": "x", "type": {"type": "map", "values": "int"}}]}, b"\x00"),
    ({"type": "record", "fields": [{"name": "x", "type": ["null", "int"]}]}, b"\x00"),
    ({"type": "record", "fields": [{"name": "x", "type": "string"}]}, b"\x00"),
])


@st.composite
def item_bombs(draw) -> tuple[bytes, bool]:
    """(a packet, whether it must be refused: its array items take no bytes)."""
    style = draw(STYLES)
    zero = draw(st.booleans())
    if zero:
        declaration, unit = draw(ZERO), b""
    else:
        declaration, unit = draw(CHEAP)
    declared, reference, outer = named(declaration, "Item", style)
    container_kind = draw(st.sampled_from(["array", "map", "array of arrays"]))
    if container_kind == "map":
        items_type, unit = {"type": "map", "values": reference}, b"\x02k" + unit
    elif container_kind == "array of arrays":
        items_type = {"type": "array", "items": {"type": "array", "items": reference}}
        unit = varint(1) + (unit or b"") + b"\x00"
    else:
        items_type = {"type": "array", "items": reference}
    schema = {"type": "record", "name": "Outer", **outer, "fields": [
        {"name": "declared", "type": declared}, {"name": "items", "type": items_type}]}
    count = draw(COUNTS)
    fill = draw(st.booleans()) and unit != b""
    block, codec = block_of(count, unit or b"\x00", fill, draw(st.sampled_from(["null", "deflate"])))
    # The declared value comes first: nothing for a zero-size one, one 0 byte for each CHEAP one.
    declared_value = b"" if zero else b"\x00"
    must_refuse = zero and container_kind != "map"  # a map entry's key takes a byte
    if codec == "deflate":
        raw = zlib.decompressobj(-15).decompress(block)
        return container(schema, deflate(declared_value + raw), codec="deflate"), must_refuse
    return container(schema, declared_value + block), must_refuse


@pytest.mark.parametrize("strategy", ["recursive", "items"])
def test_hostile_schemas_never_end_the_decoder_by_a_signal_or_a_limit(strategy, tmp_path):
    packets = st.lists(recursive_packets() if strategy == "recursive" else item_bombs(), min_size=1, max_size=6)

    @PROPERTY
    @given(packets)
    def run(batch):
        code, lines, err = decode_batch_in_child([packet for packet, _ in batch], tmp_path / "batch",
                                                 memory_bytes=1 << 30, cpu_seconds=10)
        assert code == 0, f"the child ended with {code} (negative: a signal) after {lines[-1:]}: {err[-1500:]}"
        assert len(lines) == len(batch), (lines, err[-1500:])
        for line, (_, must_refuse) in zip(lines, batch, strict=True):
            index, cpu, outcome = line.split(" ", 2)
            assert outcome.startswith("DecodeError:" if must_refuse else ("DecodeError:", "decoded")), line
            assert "MemoryError" not in outcome, line  # refused by a bound, not by running out of memory
            worst[0] = max(worst[0], float(cpu))

    worst = [0.0]
    run()
    print(f"\n{strategy}: the slowest packet took {worst[0]:.3f} s of CPU")
