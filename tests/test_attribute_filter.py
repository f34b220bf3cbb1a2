"""Google's Pub/Sub filter language, parsed and evaluated as Pub/Sub does.

The examples and the refused filters are those of Google's page "Filter messages from a subscription"
(https://cloud.google.com/pubsub/docs/subscription-message-filter); the message sets and the expected deliveries
of the evaluation table are those of Google's own fake server's tests (google-cloud-go ``pubsub/pstest``).
"""

from __future__ import annotations

import pytest

from tom_pittgoogle.core.attribute_filter import (
    MAX_FILTER_BYTES,
    AttributeFilter,
    FilterSyntaxError,
    all_of,
    parse_filter,
    quote,
)
from tom_pittgoogle.exceptions import ConfigurationError

# --- Google's documented examples: each is accepted, and means what the page says -------------------------

DOC_EXAMPLES = [
    "attributes:name",
    "NOT attributes:name",
    'attributes.name = "com"',
    'attributes.name != "com"',
    'hasPrefix(attributes.name, "co")',
    'NOT hasPrefix(attributes.name, "co")',
    'attributes."iana.org/language_tag" = "en"',
    'attributes:"\\u307F\\u3093\\u306A"',
    'attributes:"iana.org/language_tag" AND NOT attributes.name = "com"',
    'attributes:"iana.org/language_tag" AND (attributes.name = "net" OR attributes.name = "org")',
    'attributes.name = "com" AND -attributes:"iana.org/language_tag"',
    "attributes:domain",
    'attributes.domain = "com"',
    'attributes.domain != "org"',
]


@pytest.mark.parametrize("expression", DOC_EXAMPLES)
def test_every_documented_example_is_accepted_and_renders_back_to_the_same_meaning(expression):
    parsed = AttributeFilter.parse(expression)
    assert str(parsed) == expression  # what Pub/Sub is given is what was written
    again = AttributeFilter.parse(parsed.canonical)
    assert again.node == parsed.node


NAME = {"name": "com"}
LANG = "iana.org/language_tag"


@pytest.mark.parametrize(
    ("expression", "attributes", "delivered"),
    [
        # The page's table: the name attribute.
        ("attributes:name", NAME, True),
        ("attributes:name", {"other": "com"}, False),
        ("NOT attributes:name", NAME, False),
        ("NOT attributes:name", {}, True),
        ('attributes.name = "com"', NAME, True),
        ('attributes.name = "com"', {"name": "Com"}, False),  # case-sensitive
        ('attributes.name = "com"', {}, False),
        ('attributes.name != "com"', NAME, False),
        ('attributes.name != "com"', {"name": "net"}, True),
        ('attributes.name != "com"', {}, True),  # the negation of =: a message without the key passes
        ('hasPrefix(attributes.name, "co")', NAME, True),
        ('hasPrefix(attributes.name, "co")', {"name": "co"}, True),
        ('hasPrefix(attributes.name, "co")', {"name": "c"}, False),
        ('hasPrefix(attributes.name, "co")', {}, False),
        ('NOT hasPrefix(attributes.name, "co")', {}, True),
        ('NOT hasPrefix(attributes.name, "co")', {"name": "net"}, True),
        ('NOT hasPrefix(attributes.name, "co")', NAME, False),
        # A key that needs a string literal, and escapes inside one.
        (f'attributes."{LANG}" = "en"', {LANG: "en"}, True),
        (f'attributes."{LANG}" = "en"', {LANG: "fr"}, False),
        ('attributes:"\\u307F\\u3093\\u306A"', {"みんな": "x"}, True),
        ('attributes:"\\u307F\\u3093\\u306A"', {"name": "x"}, False),
        # Boolean operators.
        (f'attributes:"{LANG}" AND NOT attributes.name = "com"', {LANG: "en"}, True),
        (f'attributes:"{LANG}" AND NOT attributes.name = "com"', {LANG: "en", "name": "com"}, False),
        (f'attributes:"{LANG}" AND NOT attributes.name = "com"', {"name": "net"}, False),
        (f'attributes:"{LANG}" AND (attributes.name = "net" OR attributes.name = "org")', {LANG: "en", "name": "org"},
         True),
        (f'attributes:"{LANG}" AND (attributes.name = "net" OR attributes.name = "org")', {LANG: "en", "name": "com"},
         False),
        (f'attributes:"{LANG}" AND (attributes.name = "net" OR attributes.name = "org")', {"name": "net"}, False),
        (f'attributes.name = "com" AND -attributes:"{LANG}"', NAME, True),
        (f'attributes.name = "com" AND -attributes:"{LANG}"', {**NAME, LANG: "en"}, False),
    ],
)
def test_the_documented_filters_deliver_what_the_page_says(expression, attributes, delivered):
    assert AttributeFilter.parse(expression).matches(attributes) is delivered


# Google's fake server's own test: twelve messages, and which of them each filter delivers.
PSTEST_MESSAGES = {
    1: {"lang": "en", "name": "com", "timezone": "UTC"},
    2: {"lang": "en", "name": "net", "timezone": "UTC"},
    3: {"lang": "en", "name": "org", "timezone": "UTC"},
    4: {"lang": "cn", "name": "com", "timezone": "UTC"},
    5: {"lang": "cn", "name": "net", "timezone": "UTC"},
    6: {"lang": "cn", "name": "org", "timezone": "UTC"},
    7: {"lang": "jp", "name": "co", "timezone": "UTC"},
    8: {"lang": "jp", "timezone": "UTC"},
    9: {"name": "com", "timezone": "UTC"},
    10: {"lang": "jp", "\u307F\u3093\u306A": "dummy1"},
    11: {"\u307F\u3093\u306A": "dummy2"},
    12: {"name": "com", "\u307F\u3093\u306A": "dummy3"},
}


@pytest.mark.parametrize(
    ("expression", "delivered"),
    [
        ('attributes.name = "com"', {1, 4, 9, 12}),
        ('attributes.name != "com"', {2, 3, 5, 6, 7, 8, 10, 11}),
        ('hasPrefix(attributes.name, "co")', {1, 4, 7, 9, 12}),
        ("attributes:name", {1, 2, 3, 4, 5, 6, 7, 9, 12}),
        ("NOT attributes:name", {8, 10, 11}),
        ('(NOT attributes:name) OR attributes.name = "co"', {7, 8, 10, 11}),
        ('NOT (attributes:name OR attributes.lang = "jp")', {11}),
        ('attributes.name = "com" AND -attributes:"lang"', {9, 12}),
        ('attributes:"\u307F\u3093\u306A"', {10, 11, 12}),
        ('attributes:"\\u307F\\u3093\\u306A"', {10, 11, 12}),
    ],
)
def test_googles_fake_server_cases_deliver_the_same_messages(expression, delivered):
    parsed = AttributeFilter.parse(expression)
    assert {number for number, attributes in PSTEST_MESSAGES.items() if parsed.matches(attributes)} == delivered


# --- what Pub/Sub refuses: each is refused with a message that says what and where ----------------------

@pytest.mark.parametrize(
    ("expression", "says", "at"),
    [
        # The page's refused filters.
        ('"com" = attributes.name', "cannot start with a value", 1),
        ("attributes.name = attributes.website", "not two keys", 19),
        ("attributes:\\u307F\\u3093\\u306A", "only inside a string", 12),
        ('attributes:"iana.org/language_tag" AND attributes.name = "net" OR attributes.name = "org"',
         "AND and OR cannot be mixed without parentheses", 64),
        ('attributes.name = "com" AND ("net" OR "org")', "cannot start with a value", 30),
        # The page's rules: operators in capitals, values are strings, hasPrefix the only function.
        ("attributes:name and attributes:lang", "capitals: AND", 17),
        ("not attributes:name", "capitals: NOT", 1),
        ("attributes.fid = 1", "string in double quotes", 18),
        ("attributes.name = 'com'", "double quotes", 19),
        ('hasSuffix(attributes.name, "om")', "hasPrefix is the only function", 1),
        ('attributes.name =~ "c.*"', "string in double quotes", 18),
        # Keys: a dot needs a string literal; no spaces inside attributes.KEY.
        ('attributes.kafka.topic = "x"', 'attributes."kafka.topic"', 12),
        ('attributes. name = "x"', "no space", 13),
        ('attributes.name', "compared with = or !=", 16),
        ('attributes.""  = "x"', "cannot be empty", 12),
        # Structure.
        ("", "empty", None),
        ("   ", "empty", None),
        ("(attributes:name", "not closed", 1),
        ("attributes:name)", "no opening one", 16),
        ("()", "empty parentheses", 2),
        ("attributes:name attributes:lang", "joined by AND or OR", 17),
        ("attributes:name AND", "ends where a condition is expected", 20),
        ("AND attributes:name", "needs a condition before it", 1),
        ("NOT NOT attributes:name", "negated once", 5),
        ("- attributes:name", "no space", 3),
        ('hasPrefix(attributes.name "co")', "comma", 27),
        ('hasPrefix(attributes.name, "co", "x")', "closing parenthesis of hasPrefix", 32),
        ('hasPrefix(attributes.name, co)', "second argument", 28),
        ('hasPrefix("name", "co")', "first argument is attributes.KEY", 11),
        # Strings.
        ('attributes.name = "com', "not closed", 19),
        ('attributes.name = "c\\qm"', "unknown escape \\q", 21),
        ('attributes.name = "\\u30"', "4 hexadecimal digits", 20),
        ('attributes.name = "\\18"', "three octal digits", 20),
        ('attributes.name ! "com"', '"!" must be followed by "="', 17),
        ("attributes.name = \"a\" AND attributes:na$me", "unexpected character '$'", 40),
    ],
)
def test_a_filter_pubsub_refuses_is_refused_saying_what_and_where(expression, says, at):
    with pytest.raises(FilterSyntaxError) as caught:
        AttributeFilter.parse(expression)
    error = caught.value
    assert says in str(error)
    if at is None:
        assert error.position is None
    else:
        assert error.position == at - 1, str(error)
        assert f"character {at} " in str(error)
    assert isinstance(error, ConfigurationError) and isinstance(error, ValueError)


def test_the_256_byte_limit_counts_bytes_of_utf8_not_characters():
    base = 'attributes.name = ""'
    room = MAX_FILTER_BYTES - len(base)
    assert AttributeFilter.parse(f'attributes.name = "{"a" * room}"')
    with pytest.raises(FilterSyntaxError, match=f"{MAX_FILTER_BYTES + 1} bytes long; Pub/Sub allows at most 256"):
        AttributeFilter.parse(f'attributes.name = "{"a" * (room + 1)}"')
    # 86 three-byte characters are 258 bytes, fewer than 256 characters.
    with pytest.raises(FilterSyntaxError, match="bytes long"):
        AttributeFilter.parse(f'attributes.name = "{"み" * (room // 3 + 1)}"')


@pytest.mark.parametrize("text", ['plain', 'with "quotes"', "back\\slash", "tab\tand\nnewline", "\x01", "みんな"])
def test_quoted_values_read_back_as_themselves(text):
    parsed = AttributeFilter.parse(f"attributes.k = {quote(text)}")
    assert parsed.matches({"k": text}) and not parsed.matches({"k": text + "x"})


@pytest.mark.parametrize("escape, char", [("\\x41", "A"), ("\\101", "A"), ("\\u0041", "A"), ("\\U0001F600", "😀"),
                                          ('\\"', '"'), ("\\\\", "\\"), ("\\n", "\n"), ("\\'", "'")])
def test_unicode_hex_and_octal_escapes_inside_a_string(escape, char):
    assert AttributeFilter.parse(f'attributes.k = "{escape}"').matches({"k": char})


def test_spacing_and_hyphenated_keys():
    parsed = AttributeFilter.parse('attributes.ce-type="x"   AND   attributes:ce-source')
    assert parsed.matches({"ce-type": "x", "ce-source": ""})
    assert parsed.canonical == 'attributes.ce-type = "x" AND attributes:ce-source'


def test_no_filter_is_none_and_parts_combine_with_and_keeping_or_groups_in_parentheses():
    assert parse_filter(None) is None and parse_filter("  ") is None
    variable = AttributeFilter.parse('attributes.pg_variable = "likely"')
    either = AttributeFilter.parse('attributes.fid = "1" OR attributes.fid = "2"')
    combined = all_of(variable, None, either)
    assert combined.expression == 'attributes.pg_variable = "likely" AND (attributes.fid = "1" OR attributes.fid = "2")'
    assert combined.matches({"pg_variable": "likely", "fid": "2"})
    assert not combined.matches({"pg_variable": "likely", "fid": "3"})
    assert all_of() is None and all_of(None) is None
    with pytest.raises(FilterSyntaxError, match="bytes long"):
        all_of(*[AttributeFilter.parse(f'attributes.key_{i} = "value"') for i in range(12)])
