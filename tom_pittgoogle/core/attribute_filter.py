"""Pub/Sub subscription filters: Google's filter language on message attributes, parsed and evaluated here.

A subscription's ``filter`` makes Pub/Sub drop, at the server, every message whose attributes do not match: the
TOM never receives it (no delivery, no egress, no decoding). The filter is fixed when the subscription is created
and is at most 256 bytes. The language (https://cloud.google.com/pubsub/docs/subscription-message-filter):

- ``attributes:KEY`` — the message has the attribute KEY;
- ``attributes.KEY = "VALUE"`` and ``attributes.KEY != "VALUE"`` — exact, case-sensitive; ``!=`` is the negation
  of ``=``, so it also matches a message without KEY;
- ``hasPrefix(attributes.KEY, "PREFIX")`` — KEY is there and its value starts with PREFIX (the only function);
- ``NOT`` (or ``-`` directly before a condition), ``AND``, ``OR``, in capitals, with parentheses. ``NOT`` binds
  tightest; ``AND`` and ``OR`` cannot be mixed without parentheses.

A KEY of letters, digits, ``-`` and ``_`` is written as it is; any other KEY (``kafka.topic``,
``iana.org/language_tag``) as a string in double quotes. Strings take backslash escapes (``\\"``, ``\\\\``, ``\\n``,
``\\t``, ..., ``\\xHH``, octal ``\\OOO``, ``\\uHHHH``, ``\\UHHHHHHHH``), which are not allowed outside a string.

The official Pub/Sub emulator accepts a subscription's filter but delivers every message, so the streams also
evaluate the filter on each message (:meth:`AttributeFilter.matches`): a TOM keeps the same alerts on Google and on
the emulator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tom_pittgoogle.exceptions import ConfigurationError

#: Pub/Sub's limit on a filter's length, in bytes of UTF-8.
MAX_FILTER_BYTES = 256

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
                   "'": "'", '"': '"', "`": "`", "?": "?"}
_RENDER_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class FilterSyntaxError(ConfigurationError, ValueError):
    """A filter that Pub/Sub would refuse; the message says what is wrong and at which character."""

    def __init__(self, problem: str, expression: str = "", position: int | None = None) -> None:
        self.problem = problem
        self.expression = expression
        self.position = position  # 0-based index into the expression, or None for the whole of it
        if position is None:
            message = f"Subscription filter: {problem}"
        else:
            shown = expression[position:position + 30]
            near = f' (at "{shown}{"..." if len(expression) > position + 30 else ""}")' if shown else " (at the end)"
            message = f"Subscription filter, character {position + 1}{near}: {problem}"
        super().__init__(message)


# --- the tree ------------------------------------------------------------------------------------------------


def quote(text: str) -> str:
    """``text`` as a string literal of the filter language."""
    out = []
    for char in text:
        if char in _RENDER_ESCAPES:
            out.append(_RENDER_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else quote(key)


@dataclass(frozen=True)
class Has:
    """``attributes:KEY``."""

    key: str

    def matches(self, attributes: Mapping[str, str]) -> bool:
        return self.key in attributes

    def render(self) -> str:
        return f"attributes:{_key(self.key)}"


@dataclass(frozen=True)
class Equals:
    """``attributes.KEY = "VALUE"`` (or ``!=`` when ``negated``: true too when KEY is missing)."""

    key: str
    value: str
    negated: bool = False

    def matches(self, attributes: Mapping[str, str]) -> bool:
        return (attributes.get(self.key) == self.value) != self.negated

    def render(self) -> str:
        return f"attributes.{_key(self.key)} {'!=' if self.negated else '='} {quote(self.value)}"


@dataclass(frozen=True)
class HasPrefix:
    """``hasPrefix(attributes.KEY, "PREFIX")``."""

    key: str
    prefix: str

    def matches(self, attributes: Mapping[str, str]) -> bool:
        value = attributes.get(self.key)
        return value is not None and value.startswith(self.prefix)

    def render(self) -> str:
        return f"hasPrefix(attributes.{_key(self.key)}, {quote(self.prefix)})"


@dataclass(frozen=True)
class Not:
    operand: Node

    def matches(self, attributes: Mapping[str, str]) -> bool:
        return not self.operand.matches(attributes)

    def render(self) -> str:
        inner = self.operand.render()
        return f"NOT ({inner})" if isinstance(self.operand, And | Or) else f"NOT {inner}"


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]

    def matches(self, attributes: Mapping[str, str]) -> bool:
        return all(operand.matches(attributes) for operand in self.operands)

    def render(self) -> str:
        return " AND ".join(f"({o.render()})" if isinstance(o, Or) else o.render() for o in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]

    def matches(self, attributes: Mapping[str, str]) -> bool:
        return any(operand.matches(attributes) for operand in self.operands)

    def render(self) -> str:
        return " OR ".join(f"({o.render()})" if isinstance(o, And) else o.render() for o in self.operands)


Node = Has | Equals | HasPrefix | Not | And | Or


# --- the parser ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # word, string, ( ) , : . = != - end
    text: str  # a word's text, a string's value
    start: int
    spaced: bool  # whitespace right before it


def _tokens(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(expression)
    while True:
        j = i
        while j < n and expression[j].isspace():
            j += 1
        spaced, i = j > i, j
        if i >= n:
            tokens.append(_Token("end", "", n, spaced))
            return tokens
        char = expression[i]
        if char == '"':
            value, i_end = _string(expression, i)
            tokens.append(_Token("string", value, i, spaced))
            i = i_end
        elif expression.startswith("!=", i):
            tokens.append(_Token("!=", "!=", i, spaced))
            i += 2
        elif char in "(),:.=-":
            tokens.append(_Token(char, char, i, spaced))
            i += 1
        elif (word := _WORD.match(expression, i)) is not None:
            tokens.append(_Token("word", word.group(), i, spaced))
            i = word.end()
        elif char == "\\":
            raise FilterSyntaxError("a backslash escape is allowed only inside a string in double quotes, e.g. "
                                    'attributes:"\\u307F"', expression, i)
        elif char == "'":
            raise FilterSyntaxError("strings are written in double quotes", expression, i)
        elif char == "!":
            raise FilterSyntaxError('"!" must be followed by "=" (attributes.KEY != "VALUE"); to negate, write NOT',
                                    expression, i)
        else:
            raise FilterSyntaxError(
                f"unexpected character {char!r}: a key of characters other than letters, digits, - and _ is written "
                'as a string in double quotes, e.g. attributes."kafka.topic"', expression, i)


def _string(expression: str, start: int) -> tuple[str, int]:
    """The value of the string literal starting at ``start`` (a double quote), and the index after it."""
    out: list[str] = []
    i, n = start + 1, len(expression)
    while i < n:
        char = expression[i]
        if char == '"':
            return "".join(out), i + 1
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 >= n:
            break
        escape = expression[i + 1]
        if escape in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[escape])
            i += 2
            continue
        digits = {"x": 2, "X": 2, "u": 4, "U": 8}.get(escape)
        if digits is not None:
            code = expression[i + 2:i + 2 + digits]
            if len(code) != digits or not re.fullmatch(r"[0-9A-Fa-f]+", code):
                raise FilterSyntaxError(f"\\{escape} must be followed by {digits} hexadecimal digits", expression, i)
            value = int(code, 16)
            if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise FilterSyntaxError(f"\\{escape}{code} is not a Unicode character", expression, i)
            out.append(chr(value))
            i += 2 + digits
            continue
        if escape in "01234567":
            code = expression[i + 1:i + 4]
            if not re.fullmatch(r"[0-7]{3}", code):
                raise FilterSyntaxError("an octal escape is a backslash and three octal digits (\\101)", expression, i)
            out.append(chr(int(code, 8)))
            i += 4
            continue
        raise FilterSyntaxError(f"unknown escape \\{escape} in a string", expression, i)
    raise FilterSyntaxError("a string is not closed: it needs its closing double quote", expression, start)


_OPERATORS = ("AND", "OR", "NOT")


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = _tokens(expression)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, problem: str, token: _Token | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(problem, self.expression, (token or self.token).start)

    def is_word(self, *words: str) -> bool:
        return self.token.kind == "word" and self.token.text in words

    def expect(self, kind: str, what: str) -> _Token:
        if self.token.kind != kind:
            raise self.fail(f"expected {what}")
        return self.advance()

    def parse(self) -> Node:
        node = self.expression_()
        token = self.token
        if token.kind == ")":
            raise self.fail("this closing parenthesis has no opening one")
        if token.kind != "end":
            self._refuse_lower_case_operator()
            raise self.fail("two conditions must be joined by AND or OR")
        return node

    def _refuse_lower_case_operator(self) -> None:
        if self.token.kind == "word" and self.token.text.upper() in _OPERATORS and self.token.text not in _OPERATORS:
            raise self.fail(f"operators are written in capitals: {self.token.text.upper()}, not {self.token.text}")

    def expression_(self) -> Node:
        operands = [self.unary()]
        joined_by = None
        while self.is_word("AND", "OR"):
            operator = self.token
            if joined_by is not None and operator.text != joined_by:
                raise self.fail(
                    f"AND and OR cannot be mixed without parentheses: put parentheses around the conditions that "
                    f"{operator.text} joins, or around those that {joined_by} joins", operator)
            if not operator.spaced:
                raise self.fail(f"{operator.text} must have a space before it", operator)
            joined_by = self.advance().text
            if not self.token.spaced and self.token.kind != "end":
                raise self.fail(f"{joined_by} must have a space after it")
            operands.append(self.unary())
        if joined_by is None:
            return operands[0]
        return And(tuple(operands)) if joined_by == "AND" else Or(tuple(operands))

    def unary(self) -> Node:
        if self.is_word("NOT"):
            self.advance()
            if not self.token.spaced and self.token.kind != "(":
                raise self.fail("NOT must have a space after it")
            return Not(self.negated())
        if self.token.kind == "-":
            self.advance()
            if self.token.spaced:
                raise self.fail("a minus sign (NOT) is written right before its condition, with no space")
            return Not(self.negated())
        return self.primary()

    def negated(self) -> Node:
        if self.is_word("NOT") or self.token.kind == "-":
            raise self.fail("a condition is negated once: for NOT NOT write the condition, or use parentheses")
        if self.token.kind in ("end", ")") or self.is_word("AND", "OR"):
            raise self.fail("NOT needs a condition after it")
        return self.primary()

    def primary(self) -> Node:
        token = self.token
        if token.kind == "(":
            self.advance()
            if self.token.kind == ")":
                raise self.fail("empty parentheses: they must hold a condition")
            node = self.expression_()
            if self.token.kind != ")":
                if self.token.kind == "end":
                    raise self.fail("an opening parenthesis is not closed", token)
                self._refuse_lower_case_operator()
                raise self.fail("two conditions must be joined by AND or OR")
            self.advance()
            return node
        if token.kind == "word" and token.text == "attributes":
            return self.attribute_condition()
        if token.kind == "word" and token.text == "hasPrefix":
            return self.has_prefix()
        if token.kind == "string":
            raise self.fail('a condition cannot start with a value: write attributes.KEY = "VALUE"')
        if token.kind == "end":
            raise self.fail("the filter ends where a condition is expected")
        if token.kind == ")":
            raise self.fail("a condition is expected before this closing parenthesis")
        self._refuse_lower_case_operator()
        if token.kind == "word" and token.text in ("AND", "OR"):
            raise self.fail(f"{token.text} needs a condition before it")
        if token.kind == "word" and self.tokens[self.index + 1].kind == "(":
            raise self.fail(f"unknown function {token.text}: hasPrefix is the only function of a filter")
        raise self.fail('a condition is expected: attributes:KEY, attributes.KEY = "VALUE", '
                        'attributes.KEY != "VALUE" or hasPrefix(attributes.KEY, "PREFIX")')

    def key(self) -> str:
        token = self.token
        if token.spaced:
            raise self.fail("no space is allowed between attributes and its key")
        if token.kind == "string":
            self.advance()
            if not token.text:
                raise self.fail("an attribute key cannot be empty", token)
            return token.text
        if token.kind == "word":
            self.advance()
            if self.token.kind == "." and not self.token.spaced:
                raise self.fail('a key with a dot is written as a string in double quotes, e.g. '
                                f'attributes."{token.text}.{self.tokens[self.index + 1].text}"', token)
            return token.text
        raise self.fail("expected an attribute key (letters, digits, - and _, or a string in double quotes)")

    def attribute_condition(self) -> Node:
        self.advance()  # attributes
        if self.token.kind == ":":
            if self.token.spaced:
                raise self.fail("no space is allowed between attributes and :")
            self.advance()
            return Has(self.key())
        if self.token.kind != ".":
            raise self.fail('after attributes comes :KEY (has the key) or .KEY = "VALUE"')
        if self.token.spaced:
            raise self.fail("no space is allowed between attributes and .")
        self.advance()
        key = self.key()
        if self.token.kind not in ("=", "!="):
            if self.token.kind == ":":
                raise self.fail(f"to test that the key is there write attributes:{_key(key)}")
            raise self.fail(f'attributes.{_key(key)} must be compared with = or != to a value in double quotes; '
                            f"to test that the key is there write attributes:{_key(key)}")
        negated = self.advance().kind == "!="
        value = self.token
        if value.kind == "string":
            self.advance()
            return Equals(key, value.text, negated)
        if value.kind == "word" and value.text == "attributes":
            raise self.fail("a filter compares a key with a value, not two keys: the value is a string in double "
                            "quotes")
        if value.kind == "(":
            raise self.fail("the value must be one string in double quotes; to accept several, join complete "
                            'conditions with OR: (attributes.KEY = "a" OR attributes.KEY = "b")')
        raise self.fail("the value must be a string in double quotes")

    def has_prefix(self) -> Node:
        self.advance()
        if self.token.kind != "(":
            raise self.fail("hasPrefix is a function: hasPrefix(attributes.KEY, \"PREFIX\")")
        self.advance()
        if not self.is_word("attributes"):
            raise self.fail("hasPrefix's first argument is attributes.KEY")
        self.advance()
        if self.token.kind != "." or self.token.spaced:
            raise self.fail("hasPrefix's first argument is attributes.KEY")
        self.advance()
        key = self.key()
        self.expect(",", "a comma between hasPrefix's two arguments")
        prefix = self.token
        if prefix.kind != "string":
            raise self.fail("hasPrefix's second argument is the prefix, a string in double quotes")
        self.advance()
        self.expect(")", "the closing parenthesis of hasPrefix (it takes two arguments)")
        return HasPrefix(key, prefix.text)


# --- the public face ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeFilter:
    """A parsed subscription filter: :attr:`expression` is what Pub/Sub is given, :meth:`matches` evaluates it."""

    expression: str
    node: Node

    @classmethod
    def parse(cls, expression: str) -> AttributeFilter:
        """Parse and check ``expression``; raise :class:`FilterSyntaxError` saying what is wrong and where."""
        if not isinstance(expression, str):
            raise FilterSyntaxError(f"a filter is a text, not {type(expression).__name__}")
        size = len(expression.encode("utf-8"))
        if size > MAX_FILTER_BYTES:
            raise FilterSyntaxError(f"it is {size} bytes long; Pub/Sub allows at most {MAX_FILTER_BYTES} bytes")
        if not expression.strip():
            raise FilterSyntaxError("it is empty (no filter at all is written as no filter)")
        return cls(expression, _Parser(expression).parse())

    @classmethod
    def of(cls, node: Node) -> AttributeFilter:
        """The filter ``node`` renders as, checked as Pub/Sub would check it (the 256 bytes)."""
        return cls.parse(node.render())

    def matches(self, attributes: Mapping[str, str] | None) -> bool:
        """True when a message with these attributes passes (Pub/Sub would deliver it)."""
        return self.node.matches(attributes or {})

    @property
    def canonical(self) -> str:
        """The expression with its spacing and quoting normalised: two filters that mean the same as written
        compare equal by it."""
        return self.node.render()

    def __str__(self) -> str:
        return self.expression


def parse_filter(expression: str | None) -> AttributeFilter | None:
    """``expression`` parsed, or None when it is empty or None (no filter)."""
    if expression is None or (isinstance(expression, str) and not expression.strip()):
        return None
    return AttributeFilter.parse(expression)


def all_of(*parts: Node | AttributeFilter | None) -> AttributeFilter | None:
    """The filter that passes what every part passes (None parts ignored); None when there is no part.

    Raises :class:`FilterSyntaxError` when the result is longer than Pub/Sub allows.
    """
    nodes: list[Node] = []
    for part in parts:
        if part is None:
            continue
        node = part.node if isinstance(part, AttributeFilter) else part
        nodes.extend(node.operands if isinstance(node, And) else (node,))
    if not nodes:
        return None
    return AttributeFilter.of(nodes[0] if len(nodes) == 1 else And(tuple(nodes)))
