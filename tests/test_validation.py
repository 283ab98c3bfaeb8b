"""expertconnect.validation.Form, field kind by field kind (pure logic): what each accepts, what
it returns, and the message it records for what it refuses; every problem reported at once."""

import datetime as dt
import time
from decimal import Decimal

import pytest

from expertconnect.errors import ValidationError
from expertconnect.validation import INT64_MAX, REQUIRED, Form

UTC = dt.UTC


def read(kind: str, value, *, from_query: bool = False, **options):
    """Read the field "f" holding `value` with Form.<kind>; (result, the errors recorded)."""
    form = Form({"f": value}, from_query=from_query)
    result = getattr(form, kind)("f", **options)
    return result, form.errors


def refused(kind: str, value, **options) -> str:
    """The one message `kind` records for `value`."""
    result, errors = read(kind, value, **options)
    assert result is None, result
    assert list(errors) == ["f"] and len(errors["f"]) == 1, errors
    return errors["f"][0]


# ---------------------------------------------------------------------- presence
@pytest.mark.parametrize(
    "kind", ["string", "integer", "object_id", "time_of_day", "boolean", "timestamp", "money"]
)
def test_a_missing_or_null_required_field_is_required(kind):
    form = Form({"f": None})
    assert getattr(form, kind)("f") is None
    assert getattr(form, kind)("g") is None
    assert form.errors == {"f": [REQUIRED], "g": [REQUIRED]}


def test_an_optional_field_may_be_missing_or_null_and_gets_its_default():
    form = Form({"n": None})
    assert form.string("n", required=False, default="x") == "x"
    assert form.string("absent", required=False, default="x") == "x"
    assert form.integer("absent", required=False) is None
    assert form.url("absent", required=False) is None
    assert form.errors == {}


def test_has_tells_present_from_absent_even_when_null():
    form = Form({"bio": None})
    assert form.has("bio") and not form.has("first_name")


# ---------------------------------------------------------------------- strings
def test_a_string_is_stripped():
    assert read("string", "  Ada \n") == ("Ada", {})


def test_a_string_must_be_a_string():
    for value in (1, 1.5, True, ["a"], {"a": 1}):
        assert refused("string", value) == "Must be a string."


def test_a_blank_string_is_refused_unless_allowed():
    assert refused("string", "   ") == "This field may not be blank."
    assert refused("string", "") == "This field may not be blank."
    assert read("string", "  ", allow_blank=True) == ("", {})


def test_max_length_counts_characters_after_stripping():
    assert read("string", " " + "é" * 5 + " ", max_length=5) == ("é" * 5, {})
    assert refused("string", "a" * 6, max_length=5) == (
        "Ensure this field has no more than 5 characters."
    )
    assert read("string", "a" * 255) == ("a" * 255, {})  # the default limit
    assert refused("string", "a" * 256).startswith("Ensure this field has no more than 255")


def test_text_postgresql_cannot_store_is_refused():
    assert refused("string", "a\x00b") == "NUL characters are not allowed."
    assert refused("string", "a\ud800b") == "Invalid unicode (lone surrogate)."
    # A pair that encodes fine is ordinary text.
    assert read("string", "emoji \U0001f600") == ("emoji \U0001f600", {})


# ---------------------------------------------------------------------- integers and ids
def test_an_integer_must_be_a_json_integer():
    assert read("integer", 42) == (42, {})
    for value in (True, False, 1.0, 1.5, "1", [1], {"n": 1}):
        assert refused("integer", value) == "A valid integer is required."


def test_integer_bounds_are_int64_and_min_value():
    assert read("integer", INT64_MAX) == (INT64_MAX, {})
    assert read("integer", -INT64_MAX) == (-INT64_MAX, {})
    too_big = f"Ensure this value is less than or equal to {INT64_MAX}."
    assert refused("integer", INT64_MAX + 1) == too_big
    assert refused("integer", -INT64_MAX - 1) == too_big
    assert refused("integer", 11, max_value=10) == (
        "Ensure this value is less than or equal to 10."
    )
    assert refused("integer", 0, min_value=1) == (
        "Ensure this value is greater than or equal to 1."
    )


def test_an_integer_from_the_query_string_is_ascii_digits_only():
    assert read("integer", "42", from_query=True) == (42, {})
    assert read("integer", "-7", from_query=True) == (-7, {})
    # Arabic-Indic and full-width digits, which int() would accept; signs, spaces, decimals.
    for text in ("\u0663", "\uff11", "+1", " 1", "1 ", "1.0", "1e3", "", "0x10", "1_000"):
        assert refused("integer", text, from_query=True) == "A valid integer is required.", text
    assert refused("integer", "9" * 21, from_query=True) == "A valid integer is required."
    assert refused("integer", "9" * 20, from_query=True).startswith("Ensure this value is less")


def test_an_object_id_is_a_positive_int64():
    assert read("object_id", 1) == (1, {})
    assert read("object_id", INT64_MAX) == (INT64_MAX, {})
    assert refused("object_id", 0) == "Ensure this value is greater than or equal to 1."
    assert refused("object_id", -5) == "Ensure this value is greater than or equal to 1."
    assert refused("object_id", INT64_MAX + 1).startswith("Ensure this value is less")
    assert refused("object_id", True) == "A valid integer is required."
    assert refused("object_id", "7") == "A valid integer is required."
    assert read("object_id", "7", from_query=True) == (7, {})


# ---------------------------------------------------------------------- choices and booleans
def test_a_choice_is_one_of_the_given_strings():
    assert read("choice", "guest", choices=["host", "guest"]) == ("guest", {})
    assert refused("choice", "GUEST", choices=["host", "guest"]) == (
        '"GUEST" is not a valid choice. Choose one of: host, guest.'
    )
    assert refused("choice", 5, choices=["a"]) == '"5" is not a valid choice. Choose one of: a.'


def test_a_refused_choice_is_echoed_only_when_short_clean_text():
    for value in ("x" * 101, "a\ud800", "a\x00", ["a"], {"a": 1}):
        assert refused("choice", value, choices=["a"]) == "Not a valid choice. Choose one of: a."


def test_a_boolean_is_json_true_or_false():
    assert read("boolean", True) == (True, {})
    assert read("boolean", False) == (False, {})
    for value in ("true", 1, 0, "yes"):
        assert refused("boolean", value) == "Must be a boolean (true or false)."


def test_a_boolean_from_the_query_string_is_true_false_1_or_0():
    for text, expected in (("true", True), ("TRUE", True), ("1", True)):
        assert read("boolean", text, from_query=True) == (expected, {})
    for text in ("false", "False", "0"):
        assert read("boolean", text, from_query=True) == (False, {})
    for text in ("yes", "on", "", "2"):
        assert refused("boolean", text, from_query=True) == "Must be a boolean (true or false)."


# ---------------------------------------------------------------------- times
def test_a_timestamp_is_any_iso_8601_form_returned_in_utc():
    ten = dt.datetime(2025, 3, 23, 10, 0, tzinfo=UTC)
    assert read("timestamp", "2025-03-23T10:00:00Z") == (ten, {})
    assert read("timestamp", "2025-03-23T12:00:00+02:00") == (ten, {})
    assert read("timestamp", " 2025-03-23T10:00:00.000Z ") == (ten, {})


def test_a_timestamp_without_an_offset_is_utc_not_the_servers_local_time(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        result = read("timestamp", "2025-03-23T10:00:00")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert result == (dt.datetime(2025, 3, 23, 10, 0, tzinfo=UTC), {})


def test_a_timestamp_that_is_not_iso_8601_is_refused():
    wrong = "Datetime has wrong format. Use ISO 8601, e.g. 2025-03-23T10:00:00Z."
    for value in ("tomorrow", "23/03/2025 10:00", "2025-02-30T10:00:00Z", 1742724000, True):
        assert refused("timestamp", value) == wrong, value
    assert refused("timestamp", "2025-03-23T10:00:00\x00Z") == wrong
    assert refused("timestamp", "2025-03-23T10:00:00\ud800") == wrong


def test_a_timestamp_near_datetimes_limits_is_out_of_range():
    for value in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00Z", "9999-01-01T00:00:00Z"):
        assert refused("timestamp", value) == "Datetime is out of range.", value
    assert read("timestamp", "9998-12-31T23:59:59Z")[1] == {}


def test_a_time_of_day_is_hh_mm_with_optional_seconds():
    assert read("time_of_day", "09:00") == (dt.time(9, 0), {})
    assert read("time_of_day", " 17:30:15 ") == (dt.time(17, 30, 15), {})
    wrong = "Time has wrong format. Use hh:mm:ss, e.g. 09:00:00."
    for value in ("9:00", "24:00", "12:60", "09:00:00.5", "09:00Z", 900, "nine"):
        assert refused("time_of_day", value) == wrong, value


# ---------------------------------------------------------------------- money and URLs
def test_money_is_a_positive_amount_with_two_decimals_at_most():
    assert read("money", "10.00") == (Decimal("10.00"), {})
    assert read("money", " 10.5 ") == (Decimal("10.50"), {})
    assert read("money", 10) == (Decimal("10.00"), {})
    assert read("money", 0.1) == (Decimal("0.10"), {})  # the float's shortest repr, not 0.1000..
    assert read("money", "9999999999.99") == (Decimal("9999999999.99"), {})


def test_money_that_is_not_a_finite_number_is_refused():
    for value in ("abc", "", "NaN", "Infinity", True, ["1"], {"a": 1}):
        assert refused("money", value) == "A valid number is required.", value


def test_money_that_is_not_positive_or_too_precise_or_too_big_is_refused():
    assert refused("money", "0") == "Ensure this value is greater than 0."
    assert refused("money", "-1.00") == "Ensure this value is greater than 0."
    too_precise = (
        "Ensure there are no more than 2 decimal places and 10 digits before the decimal point."
    )
    assert refused("money", "1.001") == too_precise
    assert refused("money", "10000000000") == too_precise
    assert refused("money", "1e30") == too_precise  # quantize() alone would raise


def test_a_url_is_http_or_https_and_may_be_blank():
    assert read("url", " https://example.com/a.png ") == ("https://example.com/a.png", {})
    assert read("url", "HTTP://example.com") == ("HTTP://example.com", {})
    assert read("url", "") == ("", {})
    invalid = "Enter a valid http(s) URL."
    for value in ("javascript:alert(1)", "ftp://example.com/x", "//example.com", "http://"):
        assert refused("url", value) == invalid, value
    assert refused("url", "https://example.com/a b") == invalid


def test_a_url_has_a_length_limit_and_the_string_rules():
    long_url = "https://example.com/" + "a" * 1981
    assert refused("url", long_url) == "Ensure this field has no more than 2000 characters."
    assert read("url", long_url[:-1])[1] == {}
    assert refused("url", "https://example.com/\x00") == "NUL characters are not allowed."
    assert refused("url", 5) == "Must be a string."


# ---------------------------------------------------------------------- the whole form
def test_every_problem_is_reported_at_once():
    form = Form(
        {
            "username": "",
            "expert_id": True,
            "amount": "1.005",
            "scheduled_start": "soon",
            "bio": "fine",
        }
    )
    form.string("username")
    form.object_id("expert_id")
    form.money("amount")
    form.timestamp("scheduled_start")
    form.string("bio")
    form.string("email")
    with pytest.raises(ValidationError) as raised:
        form.validate()
    assert set(raised.value.errors) == {
        "username",
        "expert_id",
        "amount",
        "scheduled_start",
        "email",
    }
    assert raised.value.errors["email"] == [REQUIRED]
    assert raised.value.body() == {"errors": raised.value.errors}


def test_validate_passes_a_clean_form():
    form = Form({"a": "x", "n": "3"}, from_query=True)
    assert form.string("a") == "x"
    assert form.integer("n") == 3
    form.validate()  # no exception


def test_check_adds_a_rule_only_to_a_field_without_a_problem_yet():
    form = Form({"start": "10:00", "end": "09:00", "limit": "x"}, from_query=True)
    start, end = form.time_of_day("start"), form.time_of_day("end")
    form.integer("limit")
    form.check(end > start, "end", "End must be after start.")
    form.check(False, "limit", "Never shown: limit already has a problem.")
    form.check(True, "start", "Never shown: the rule holds.")
    assert form.errors == {
        "end": ["End must be after start."],
        "limit": ["A valid integer is required."],
    }
