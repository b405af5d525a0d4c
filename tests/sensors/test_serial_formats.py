"""Line formats: what boards really print, what noise does to it, and the settings curators write."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sensors.serial_formats import (
    CsvFormat,
    FormatError,
    JsonLinesFormat,
    KeyValueFormat,
    LineFormat,
    LineFormatSettings,
    RegexFormat,
    auto_type,
)

# -- auto typing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("FALSE", False),
        ("On", True),
        ("off", False),
        ("0", 0),
        ("532", 532),
        ("-12", -12),
        ("+7", 7),
        ("532.5", 532.5),
        ("-0.25", -0.25),
        (".5", 0.5),
        ("3.", 3.0),
        ("1e3", 1000.0),
        ("2.5E-2", 0.025),
        ("open", "open"),
        ("", ""),
        ("  42 ", 42),
        ("0x1F", "0x1F"),
        ("1_000", "1_000"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("ovf", "ovf"),
        ("1e999", "1e999"),
        ("١٢", "١٢"),  # Arabic-Indic digits: int() would accept them, a board never sends them
        ("yes", "yes"),
    ],
)
def test_auto_type(text, expected):
    value = auto_type(text)
    assert value == expected
    assert type(value) is type(expected)


def test_auto_type_keeps_an_integer_too_long_to_convert_as_text():
    digits = "9" * 5000
    assert auto_type(digits) == digits


# -- JSON lines -------------------------------------------------------------------------------------


def test_json_flat_object_keeps_json_types():
    fields = JsonLinesFormat().parse('{"button": true, "distance": 532.5, "count": 3, "state": "open"}')
    assert fields == {"button": True, "distance": 532.5, "count": 3, "state": "open"}
    assert type(fields["count"]) is int
    assert type(fields["button"]) is bool


def test_json_strings_are_not_auto_typed():
    assert JsonLinesFormat().parse('{"code": "42"}') == {"code": "42"}


def test_json_nested_objects_and_lists_flatten():
    line = '{"imu": {"acc": [1, 2.5, {"z": 3}], "ok": false}, "a": {"b": {"c": "x"}}}'
    assert JsonLinesFormat().parse(line) == {
        "imu.acc.0": 1,
        "imu.acc.1": 2.5,
        "imu.acc.2.z": 3,
        "imu.ok": False,
        "a.b.c": "x",
    }


def test_json_null_is_dropped_and_non_finite_numbers_are_kept_for_the_sensor_to_refuse():
    line = '{"a": null, "b": NaN, "c": Infinity, "d": -Infinity, "e": 1e999, "f": [null, 1], "g": 2}'
    fields = JsonLinesFormat().parse(line)
    assert set(fields) == {"b", "c", "d", "e", "f.1", "g"}
    assert fields["b"] != fields["b"] and fields["c"] == fields["e"] == math.inf and fields["d"] == -math.inf


def test_json_empty_object_has_no_fields():
    assert JsonLinesFormat().parse("{}") == {}
    assert JsonLinesFormat().parse(' {"a": 1} ') == {"a": 1}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty line"),
        ("   ", "empty line"),
        ('{"a": 1', "bad JSON"),
        ('{"a": 1}}', "bad JSON"),
        ("button=1", "bad JSON"),
        ("[1, 2]", "expected a JSON object, got an array"),
        ('"text"', "expected a JSON object, got a string"),
        ("42", "expected a JSON object, got a number"),
        ("true", "expected a JSON object, got a boolean"),
        ("null", "expected a JSON object, got null"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_json_bad_lines(line, reason):
    with pytest.raises(FormatError) as caught:
        JsonLinesFormat().parse(line)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_json_deep_but_valid_nesting_flattens_without_recursion():
    depth = 500
    line = '{"k": ' * depth + "1" + "}" * depth
    assert JsonLinesFormat().parse(line) == {".".join(["k"] * depth): 1}


# -- key=value --------------------------------------------------------------------------------------


def test_keyvalue_happy_path():
    fields = KeyValueFormat().parse("button=1 distance=532.5 state=open armed=ON")
    assert fields == {"button": 1, "distance": 532.5, "state": "open", "armed": True}


def test_keyvalue_mixed_pair_separators_and_runs():
    assert KeyValueFormat().parse("a=1, b=2;c=3\td=4  ") == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_keyvalue_custom_separator_and_pairs():
    assert KeyValueFormat(separator=":", pairs="|").parse("t:21.5|h:40") == {"t": 21.5, "h": 40}


def test_keyvalue_value_may_contain_the_separator_and_be_empty():
    assert KeyValueFormat().parse("expr=a=b empty=") == {"expr": "a=b", "empty": ""}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty line"),
        ("  ", "empty line"),
        (" , ;", "empty line"),
        ("button=1 distance", "'distance' has no '='"),
        ("=5", "'=5' has no key before '='"),
        ("hello", "'hello' has no '='"),
    ],
)
def test_keyvalue_bad_lines(line, reason):
    with pytest.raises(FormatError) as caught:
        KeyValueFormat().parse(line)
    assert caught.value.reason == reason


def test_keyvalue_long_token_is_clipped_in_the_reason():
    with pytest.raises(FormatError) as caught:
        KeyValueFormat().parse("x" * 500)
    assert len(caught.value.reason) < 80


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"separator": ""}, "separator must not be empty"),
        ({"separator": ","}, "contains a character that separates pairs"),
        ({"separator": " = "}, "contains a character that separates pairs"),
        ({"separator": "\t"}, "contains a character that separates pairs"),
        ({"pairs": ""}, "pairs must name at least one character"),
    ],
)
def test_keyvalue_bad_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KeyValueFormat(**kwargs)


# -- CSV --------------------------------------------------------------------------------------------


def test_csv_happy_path():
    fmt = CsvFormat(["button", "distance", "state"])
    assert fmt.parse("1,532.5,open") == {"button": 1, "distance": 532.5, "state": "open"}
    assert fmt.parse("0, 12.25, closed") == {"button": 0, "distance": 12.25, "state": "closed"}
    assert fmt.fields() == ["button", "distance", "state"]


def test_csv_quoted_fields_keep_delimiters_and_quotes():
    fmt = CsvFormat(["label", "value", "note"])
    assert fmt.parse('"Hall, East",3,"say ""hi"""') == {"label": "Hall, East", "value": 3, "note": 'say "hi"'}
    assert fmt.parse('a, "b,c", d') == {"label": "a", "value": "b,c", "note": "d"}


def test_csv_other_delimiters():
    assert CsvFormat(["a", "b"], delimiter=";").parse("1;2.5") == {"a": 1, "b": 2.5}
    assert CsvFormat(["a", "b"], delimiter="\t").parse("on\toff") == {"a": True, "b": False}


def test_csv_empty_values_are_empty_strings():
    assert CsvFormat(["a", "b"]).parse("1,") == {"a": 1, "b": ""}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1,2", "expected 3 fields, got 2"),
        ("1,2,3,4", "expected 3 fields, got 4"),
        ("1", "expected 3 fields, got 1"),
        ("", "empty line"),
        ("   ", "empty line"),
    ],
)
def test_csv_bad_lines(line, reason):
    with pytest.raises(FormatError) as caught:
        CsvFormat(["a", "b", "c"]).parse(line)
    assert caught.value.reason == reason


@pytest.mark.parametrize("line", ['1,"2,3', '1,"2"x,3', "1,2\r,3", "1,2\n,3"])
def test_csv_broken_quoting_and_stray_line_breaks(line):
    with pytest.raises(FormatError):
        CsvFormat(["a", "b", "c"]).parse(line)


@pytest.mark.parametrize(
    ("columns", "delimiter", "message"),
    [
        ([], ",", "at least one field"),
        (["a", "a", "b"], ",", "unique; repeated: a"),
        (["a", " "], ",", "must not be empty"),
        (["a"], ",,", "exactly one character"),
        (["a"], "", "exactly one character"),
        (["a"], '"', "cannot be"),
        (["a"], "\n", "cannot be"),
    ],
)
def test_csv_bad_construction(columns, delimiter, message):
    with pytest.raises(ValueError, match=message):
        CsvFormat(columns, delimiter)


# -- regex ------------------------------------------------------------------------------------------


def test_regex_happy_path_and_field_order():
    fmt = RegexFormat(r"T:(?P<temp>\S+) H:(?P<humidity>\d+)%")
    assert fmt.parse("T:21.5 H:40%") == {"temp": 21.5, "humidity": 40}
    assert fmt.parse("boot ok; T:-3 H:99% (sensor 2)") == {"temp": -3, "humidity": 99}
    assert fmt.fields() == ["temp", "humidity"]


def test_regex_anchored_pattern_requires_the_whole_line():
    fmt = RegexFormat(r"^(?P<value>\d+)$")
    assert fmt.parse("17") == {"value": 17}
    with pytest.raises(FormatError, match="does not match"):
        fmt.parse("17 extra")


def test_regex_optional_group_that_did_not_match_is_left_out():
    fmt = RegexFormat(r"btn=(?P<button>\d)(?: dist=(?P<distance>[\d.]+))?")
    assert fmt.parse("btn=1") == {"button": 1}
    assert fmt.parse("btn=0 dist=12.5") == {"button": 0, "distance": 12.5}


def test_regex_no_match():
    with pytest.raises(FormatError) as caught:
        RegexFormat(r"T:(?P<temp>\d+)").parse("hello")
    assert caught.value.reason == "line does not match the pattern"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"T:(?P<temp>\d+", r"pattern does not compile: missing \), unterminated subpattern"),
        (r"(?P<1bad>x)", "pattern does not compile: bad character in group name"),
        (r"T:(\d+)", r"no named groups; name each field as \(\?P<name>\.\.\.\)"),
        ("", "no named groups"),
    ],
)
def test_regex_bad_construction(pattern, message):
    with pytest.raises(ValueError, match=message):
        RegexFormat(pattern)


# -- settings ---------------------------------------------------------------------------------------


def test_settings_default_is_json():
    settings = LineFormatSettings()
    assert settings.format == "json"
    assert settings.fields() is None
    assert isinstance(settings.build(), JsonLinesFormat)


def test_settings_build_each_format():
    csv_settings = LineFormatSettings.model_validate({"format": "csv", "columns": ["a", "b"], "delimiter": ";"})
    fmt = csv_settings.build()
    assert isinstance(fmt, CsvFormat)
    assert fmt.parse("1;x") == {"a": 1, "b": "x"}
    assert csv_settings.fields() == ["a", "b"]

    regex_settings = LineFormatSettings.model_validate({"format": "regex", "pattern": r"(?P<y>\d) (?P<x>\d)"})
    assert isinstance(regex_settings.build(), RegexFormat)
    assert regex_settings.fields() == ["y", "x"]

    kv_settings = LineFormatSettings.model_validate({"format": "keyvalue", "separator": ":"})
    fmt = kv_settings.build()
    assert isinstance(fmt, KeyValueFormat)
    assert fmt.parse("a:1 b:on") == {"a": 1, "b": True}
    assert kv_settings.fields() is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": "csv"}, "the csv format needs `columns`"),
        ({"format": "csv", "columns": []}, "columns must name at least one field"),
        ({"format": "csv", "columns": ["a", "b", "a"]}, "column names must be unique; repeated: a"),
        ({"format": "csv", "columns": ["a"], "delimiter": ";;"}, "delimiter must be exactly one character"),
        ({"format": "regex"}, "the regex format needs a `pattern`"),
        ({"format": "regex", "pattern": "(?P<x>"}, "pattern does not compile: missing ), unterminated subpattern"),
        ({"format": "regex", "pattern": r"(\d+)"}, "pattern has no named groups"),
        ({"format": "json", "columns": ["a"]}, "`columns` is for the csv format only, not json"),
        ({"format": "regex", "pattern": "(?P<x>.)", "columns": ["a"]}, "`columns` is for the csv format only"),
        ({"format": "csv", "columns": ["a"], "pattern": "(?P<x>.)"}, "`pattern` is for the regex format only, not csv"),
        ({"format": "keyvalue", "delimiter": ";"}, "`delimiter` is for the csv format only, not keyvalue"),
        ({"format": "csv", "columns": ["a"], "separator": ":"}, "`separator` is for the keyvalue format only"),
        ({"format": "keyvalue", "separator": ","}, "contains a character that separates pairs"),
        ({"format": "xml"}, "Input should be 'json', 'keyvalue', 'csv' or 'regex'"),
        ({"format": "json", "colums": ["a"]}, "Extra inputs are not permitted"),
    ],
)
def test_settings_validation_errors(data, message):
    with pytest.raises(ValidationError) as caught:
        LineFormatSettings.model_validate(data)
    assert message in str(caught.value)


def test_settings_schema_describes_every_field():
    schema = LineFormatSettings.model_json_schema()
    assert schema["additionalProperties"] is False
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name


# -- no line makes any format raise anything but FormatError -----------------------------------------

FORMATS: list[LineFormat] = [
    JsonLinesFormat(),
    KeyValueFormat(),
    KeyValueFormat(separator=":", pairs="|"),
    CsvFormat(["a", "b", "c"]),
    CsvFormat(["a", "b"], delimiter=";"),
    RegexFormat(r"^(?P<a>[^,]*),(?P<b>\d+)?"),
    RegexFormat(r"T:(?P<temp>\S+)"),
]

board_like_lines = st.lists(
    st.one_of(
        st.sampled_from(['{"', "}", "[", "]", ":", ",", "=", ";", '"', " ", "\t", "\r", "\x00", "null", "1e999"]),
        st.from_regex(r"-?[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True),
        st.text(max_size=8),
    ),
    max_size=30,
).map("".join)


@given(line=st.one_of(st.text(), board_like_lines))
def test_no_line_raises_anything_but_format_error(line):
    for fmt in FORMATS:
        try:
            fields = fmt.parse(line)
        except FormatError as exc:
            assert exc.reason
            continue
        for name, value in fields.items():
            assert isinstance(name, str)
            assert isinstance(value, int | float | bool | str)
            if isinstance(value, float):
                assert math.isfinite(value)
