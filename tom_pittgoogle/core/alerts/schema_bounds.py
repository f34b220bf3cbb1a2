"""What any record of an Avro writer schema can cost to read, proven from the schema before a byte is read.

A ZTF packet carries its own writer schema, so the schema is as hostile as the bytes. cavro and fastavro read a
record by recursing in C along the schema, and turn each encoded item into Python objects; so a schema alone can
make a small packet crash the interpreter or grow to gigabytes. :func:`schema_bounds` refuses, with a
:class:`~tom_pittgoogle.exceptions.DecodeError` that says why, every writer schema that is

- **recursive** (a named type that holds itself, through fields, unions, arrays or maps): the readers recurse in C
  once per level of the data, before any depth limit is checked. No survey's alert schema is recursive;
- holding an **array of items that take no bytes** (null, a fixed of size 0, a record of such fields, wherever it
  is declared): a few bytes could declare a billion of them;
- using the **decimal** logical type: turning its bytes into a Decimal takes time that grows with the square of
  their length. No survey's alert schema uses it;
- not understood (a name it does not define, a name defined twice, a type that is not a type).

For any other schema it proves a linear bound on the memory a record takes once read: a record whose encoded form is
``L`` bytes becomes at most ``per_byte * L + fixed`` bytes of Python objects. The bound follows from two facts: each
value takes at least a known number of bytes (a union's branch index, an array item's own bytes, a map key's length:
at least one byte wherever items repeat), and each object a reader makes costs at most a known size (every number,
boolean, timestamp or enum symbol is counted as :data:`OBJECT` bytes, a string as :data:`OBJECT` plus
:data:`TEXT_PER_BYTE` bytes per encoded byte, a list item and a dict entry as their slots, and the readers' copies
of the input as :data:`INPUT_PER_BYTE` per byte). Since decoding time grows with what is built, the same
bound bounds the time a record takes to read: a packet whose bound is under the limit is read quickly, one over it
is refused before it is read.

Names are resolved as Avro resolves them: a named type's full name is its name if that holds a dot, else its
``namespace`` (or, without one, the namespace of the named type it is declared in) and its name; a reference without
a dot is looked up in the enclosing namespace. Where readers could differ (a short name that exists both in the
enclosing namespace and the null namespace), both are taken, and the worse one counts. Nothing here imports Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tom_pittgoogle.exceptions import DecodeError

#: Bytes counted for any object a reader makes for a scalar (CPython's int, float, datetime, Decimal, a short str
#: or bytes header are 24-104 bytes; booleans and None are shared, counted anyway).
OBJECT = 128
#: Bytes per encoded byte of a string or bytes value: a str of characters over U+FFFF takes 4 bytes each, and
#: decoding UTF-8 may hold a narrower copy while it widens.
TEXT_PER_BYTE = 8
#: Bytes per encoded byte for the readers' own copies of the block (a slice, a buffer), held while they read.
INPUT_PER_BYTE = 2
#: A list (its header), and each item's slot with the list's growth.
LIST = 64
LIST_SLOT = 32
#: A dict (its header and first table), and each entry with the table's growth.
DICT = 240
DICT_ENTRY = 64
#: Schema nodes visited at most: a schema of megabytes is refused in bounded time.
MAX_SCHEMA_NODES = 100_000
#: Types nested in types at most (this module recurses along the schema, as the readers do).
MAX_SCHEMA_NESTING = 200

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})


@dataclass(frozen=True)
class Cost:
    """What a value of one type costs: at least ``min_bytes`` encoded bytes, at most ``per_byte * L + fixed`` bytes
    of Python objects when encoded in ``L`` bytes, nested ``depth`` deep (records, arrays and maps)."""

    min_bytes: int
    per_byte: float
    fixed: float
    depth: int


@dataclass(frozen=True)
class SchemaBounds:
    """The proven bounds of a writer schema's records (see the module docstring)."""

    per_byte: float
    fixed: float
    #: The deepest nesting of records, arrays and maps, counted as the decoded-record walk counts it.
    depth: int
    #: The most fields of any record.
    widest: int

    def decoded_bytes(self, encoded_bytes: int) -> float:
        """The most memory a record of ``encoded_bytes`` bytes can take once read."""
        return (self.per_byte + INPUT_PER_BYTE) * encoded_bytes + self.fixed

    def readable_bytes(self, decoded_bytes: int) -> int:
        """The most encoded bytes of a record that takes at most ``decoded_bytes`` once read (the inverse of
        :meth:`decoded_bytes`): a compressed block is not inflated past it."""
        return max(0, int((decoded_bytes - self.fixed) / (self.per_byte + INPUT_PER_BYTE)))


def schema_bounds(definition: Any) -> SchemaBounds:
    """The bounds of ``definition`` (a writer schema as parsed JSON); a DecodeError if it is refused."""
    return _Analysis(definition).bounds()


def _full_name(node: Mapping, namespace: str) -> tuple[str, str]:
    """(full name, namespace its own references resolve in) of the named type ``node`` declared in ``namespace``."""
    name = node.get("name")
    if not isinstance(name, str) or not name:
        raise DecodeError("Avro writer schema has a named type without a name")
    if "." in name:
        return name, name.rpartition(".")[0]
    space = node.get("namespace", namespace)
    if space is None:
        space = ""
    if not isinstance(space, str):
        raise DecodeError(f"Avro writer schema gives {name!r} a namespace that is not text")
    if name in PRIMITIVES:
        raise DecodeError(f"Avro writer schema defines a type named {name!r}, a primitive type's name")
    return (f"{space}.{name}" if space else name), space


def _candidates(reference: str, namespace: str) -> list[str]:
    """The full names a reference may mean: Avro's own, and the null namespace's when readers could differ."""
    if "." in reference or not namespace:
        return [reference]
    return [f"{namespace}.{reference}", reference]


class _Analysis:
    def __init__(self, definition: Any) -> None:
        self.definition = definition
        self.named: dict[str, tuple[Mapping, str]] = {}  # full name -> (node, namespace inside it)
        self.costs: dict[str, Cost] = {}
        self.in_progress: list[str] = []
        self.budget = MAX_SCHEMA_NODES
        self.widest = 0
        self.level = 0

    def bounds(self) -> SchemaBounds:
        self._declare(self.definition, "")
        cost = self._cost(self.definition, "")
        return SchemaBounds(cost.per_byte, cost.fixed, cost.depth, self.widest)

    def _visit(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise DecodeError("Avro writer schema is too large to check")

    # --- first pass: every named type, wherever it is declared -------------------------------------------------

    def _declare(self, node: Any, namespace: str, level: int = 0) -> None:
        self._visit()
        if level > MAX_SCHEMA_NESTING:
            raise DecodeError("Avro writer schema nests its types too deep to be read")
        level += 1
        if isinstance(node, list):
            for branch in node:
                self._declare(branch, namespace, level)
            return
        if not isinstance(node, Mapping):
            return
        kind = node.get("type")
        if kind in NAMED:
            full, inner = _full_name(node, namespace)
            if full in self.named:
                raise DecodeError(f"Avro writer schema defines {full!r} twice")
            self.named[full] = (node, inner)
            for alias in node.get("aliases") or ():  # readers that resolve aliases see these names too
                if isinstance(alias, str) and alias:
                    self.named.setdefault(_candidates(alias, inner)[0], (node, inner))
            if kind in ("record", "error"):
                fields = node.get("fields")
                if not isinstance(fields, list):
                    raise DecodeError(f"Avro writer schema has a record ({full!r}) without a list of fields")
                for field in fields:
                    if not isinstance(field, Mapping) or "type" not in field:
                        raise DecodeError(f"Avro writer schema has a field of {full!r} without a type")
                    self._declare(field["type"], inner, level)
            return
        if kind in ("array", "map"):
            self._declare(node.get("items" if kind == "array" else "values"), namespace, level)
        elif isinstance(kind, (list, Mapping)):
            self._declare(kind, namespace, level)

    # --- second pass: the cost of each type --------------------------------------------------------------------

    def _cost(self, node: Any, namespace: str) -> Cost:
        self._visit()
        self.level += 1
        try:
            if self.level > MAX_SCHEMA_NESTING:
                raise DecodeError("Avro writer schema nests its types too deep to be read")
            return self._cost_of(node, namespace)
        finally:
            self.level -= 1

    def _cost_of(self, node: Any, namespace: str) -> Cost:
        if isinstance(node, str):
            return self._reference(node, namespace)
        if isinstance(node, list):
            return self._union(node, namespace)
        if not isinstance(node, Mapping):
            raise DecodeError(f"Avro writer schema holds a {type(node).__name__} where a type belongs")
        kind = node.get("type")
        if node.get("logicalType") == "decimal":
            raise DecodeError("Avro writer schema uses the decimal logical type (no alert schema does, and reading "
                              "it takes time that grows with the square of a value's length): refused")
        if kind in NAMED:
            return self._named(_full_name(node, namespace)[0])
        if kind == "array":
            items = node.get("items")
            item = self._cost(items, namespace)
            if item.min_bytes < 1:
                raise DecodeError(
                    f"Avro writer schema has an array of {_describe(items)}: items that take no bytes could "
                    "declare any number of them, so the packet is refused"
                )
            return Cost(1, item.per_byte + (item.fixed + LIST_SLOT) / item.min_bytes, LIST, item.depth + 1)
        if kind == "map":
            value = self._cost(node.get("values"), namespace)
            entry = 1 + value.min_bytes  # the key's length, then the value
            per_byte = max(TEXT_PER_BYTE, value.per_byte) + (DICT_ENTRY + OBJECT + value.fixed) / entry
            return Cost(1, per_byte, DICT, value.depth + 1)
        if isinstance(kind, str):  # {"type": "long"}, {"type": "ns.Name"}
            return self._reference(kind, namespace)
        if isinstance(kind, (list, Mapping)):  # {"type": [...]}, {"type": {...}}
            return self._cost(kind, namespace)
        raise DecodeError(f"Avro writer schema has a type {str(kind)[:60]!r} that is not an Avro type")

    def _union(self, branches: list, namespace: str) -> Cost:
        if not branches:
            raise DecodeError("Avro writer schema has a union without branches")
        costs = [self._cost(branch, namespace) for branch in branches]
        return Cost(
            1 + min(c.min_bytes for c in costs),  # the branch index takes at least a byte
            max(c.per_byte for c in costs),
            max(c.fixed for c in costs),
            max(c.depth for c in costs),
        )

    def _reference(self, name: str, namespace: str) -> Cost:
        if name in PRIMITIVES:
            return _primitive(name)
        found = [full for full in _candidates(name, namespace) if full in self.named]
        if not found:
            raise DecodeError(f"Avro writer schema refers to a type {name[:60]!r} that it does not define")
        costs = [self._named(full) for full in found]
        return Cost(min(c.min_bytes for c in costs), max(c.per_byte for c in costs), max(c.fixed for c in costs),
                    max(c.depth for c in costs))

    def _named(self, full: str) -> Cost:
        if full in self.costs:
            return self.costs[full]
        if full in self.in_progress:
            cycle = " -> ".join([*self.in_progress[self.in_progress.index(full):], full])
            raise DecodeError(
                f"Avro writer schema is recursive ({cycle[:200]}): a recursive schema is never read, since the "
                "readers recurse once per level of the data before any limit is checked"
            )
        node, inner = self.named[full]
        self.in_progress.append(full)
        kind = node["type"]
        if node.get("logicalType") == "decimal":
            raise DecodeError("Avro writer schema uses the decimal logical type (no alert schema does, and reading "
                              "it takes time that grows with the square of a value's length): refused")
        if kind == "fixed":
            size = node.get("size")
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise DecodeError(f"Avro writer schema has a fixed ({full!r}) without a size")
            cost = Cost(size, 0, OBJECT + TEXT_PER_BYTE * size, 0)
        elif kind == "enum":
            symbols = node.get("symbols")
            if not isinstance(symbols, list) or not symbols:
                raise DecodeError(f"Avro writer schema has an enum ({full!r}) without symbols")
            longest = max(len(str(s)) for s in symbols)
            cost = Cost(1, 0, OBJECT + TEXT_PER_BYTE * longest, 0)  # the symbol's index
        else:
            fields = [self._cost(field["type"], inner) for field in node["fields"]]
            self.widest = max(self.widest, len(fields))
            cost = Cost(
                sum(c.min_bytes for c in fields),
                max((c.per_byte for c in fields), default=0),
                DICT + sum(DICT_ENTRY + c.fixed for c in fields),
                1 + max((c.depth for c in fields), default=0),
            )
        self.in_progress.pop()
        self.costs[full] = cost
        return cost


def _primitive(name: str) -> Cost:
    if name == "null":
        return Cost(0, 0, 0, 0)
    if name in ("string", "bytes"):
        return Cost(1, TEXT_PER_BYTE, OBJECT, 0)
    return Cost({"float": 4, "double": 8}.get(name, 1), 0, OBJECT, 0)


def _describe(items: Any) -> str:
    if isinstance(items, str):
        return items
    if isinstance(items, Mapping):
        name = items.get("name")
        return f"{items.get('type')} {name}" if isinstance(name, str) else str(items.get("type"))
    return "a union"
