"""Field validation that collects every problem of a request before answering 400
{"errors": {field: [...]}}. A Form reads a JSON object, or the query string (values are text)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from expertconnect.errors import ValidationError
from expertconnect.ids import INT64_MAX

REQUIRED = "This field is required."
_MISSING = object()
_T = TypeVar("_T")
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def _is_clean_text(value: str) -> str | None:
    """Why a string cannot be stored as PostgreSQL text, or None if it can."""
    if "\x00" in value:
        return "NUL characters are not allowed."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Invalid unicode (lone surrogate)."
    return None


class Form:
    def __init__(self, data: dict[str, Any], *, from_query: bool = False):
        self.data = data
        self.from_query = from_query
        self.errors: dict[str, list[str]] = {}

    def error(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def _get(self, field: str, required: bool) -> Any:
        value = self.data.get(field, _MISSING)
        if value is None and not self.from_query:
            value = _MISSING if not required else None
        if value is _MISSING or value is None:
            if required:
                self.error(field, REQUIRED)
            return _MISSING
        return value

    def has(self, field: str) -> bool:
        return field in self.data

    def string(
        self,
        field: str,
        *,
        required: bool = True,
        max_length: int = 255,
        allow_blank: bool = False,
        default: str | None = None,
    ) -> str | None:
        value = self._get(field, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self.error(field, "Must be a string.")
            return None
        problem = _is_clean_text(value)
        if problem:
            self.error(field, problem)
            return None
        value = value.strip()
        if not value and not allow_blank:
            self.error(field, "This field may not be blank.")
            return None
        if len(value) > max_length:
            self.error(field, f"Ensure this field has no more than {max_length} characters.")
            return None
        return value

    def integer(
        self,
        field: str,
        *,
        required: bool = True,
        min_value: int | None = None,
        max_value: int = INT64_MAX,
    ) -> int | None:
        value = self._get(field, required)
        if value is _MISSING:
            return None
        # [0-9], not \d: \d also matches other scripts' digits, which int() would accept.
        if self.from_query and isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value):
            value = int(value)
        # bool is an int subclass in Python: true/false are not ids or amounts.
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(field, "A valid integer is required.")
            return None
        if value > max_value or value < -INT64_MAX:
            self.error(field, f"Ensure this value is less than or equal to {max_value}.")
            return None
        if min_value is not None and value < min_value:
            self.error(field, f"Ensure this value is greater than or equal to {min_value}.")
            return None
        return value

    def object_id(self, field: str, *, required: bool = True) -> int | None:
        """A positive 64-bit id."""
        return self.integer(field, required=required, min_value=1)

    def choice(self, field: str, choices: Iterable[str], *, required: bool = True) -> str | None:
        choices = tuple(choices)
        value = self._get(field, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str) or value not in choices:
            # The value is echoed only when it is short, clean text: a lone surrogate cannot
            # even be encoded into the response.
            shown = (
                f'"{value}" is not a valid choice'
                if isinstance(value, (str, int))
                and len(str(value)) <= 100
                and _is_clean_text(str(value)) is None
                else "Not a valid choice"
            )
            self.error(field, f"{shown}. Choose one of: " + ", ".join(choices) + ".")
            return None
        return value

    def boolean(self, field: str, *, required: bool = True) -> bool | None:
        value = self._get(field, required)
        if value is _MISSING:
            return None
        if self.from_query and isinstance(value, str):
            if value.lower() in ("true", "1"):
                return True
            if value.lower() in ("false", "0"):
                return False
        if isinstance(value, bool):
            return value
        self.error(field, "Must be a boolean (true or false).")
        return None

    def timestamp(self, field: str, *, required: bool = True) -> dt.datetime | None:
        """ISO 8601 date-time, returned in UTC; one without a UTC offset is read as UTC."""
        value = self._get(field, required)
        if value is _MISSING:
            return None
        parsed = None
        if isinstance(value, str) and _is_clean_text(value) is None:
            try:
                parsed = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                parsed = None
        if parsed is None:
            self.error(field, "Datetime has wrong format. Use ISO 8601, e.g. 2025-03-23T10:00:00Z.")
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        try:
            parsed = parsed.astimezone(dt.UTC)
        except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 has no UTC equivalent
            parsed = None
        # Far enough from datetime's limits that adding days or a time zone cannot overflow.
        if parsed is None or not 1 < parsed.year < 9999:
            self.error(field, "Datetime is out of range.")
            return None
        return parsed

    def time_of_day(self, field: str, *, required: bool = True) -> dt.time | None:
        value = self._get(field, required)
        if value is _MISSING:
            return None
        if isinstance(value, str) and re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", value.strip()):
            try:
                return dt.time.fromisoformat(value.strip())
            except ValueError:
                pass
        self.error(field, "Time has wrong format. Use hh:mm:ss, e.g. 09:00:00.")
        return None

    def money(self, field: str, *, required: bool = True) -> Decimal | None:
        """A positive decimal amount with at most two decimals, given as a string or number."""
        value = self._get(field, required)
        if value is _MISSING:
            return None
        amount = None
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            try:
                amount = Decimal(str(value).strip())
            except InvalidOperation:
                amount = None
        elif isinstance(value, float):
            amount = Decimal(str(value))
        if amount is None or not amount.is_finite():
            self.error(field, "A valid number is required.")
            return None
        if amount <= 0:
            self.error(field, "Ensure this value is greater than 0.")
            return None
        # The bound first: quantize() raises InvalidOperation for a huge value like 1e30.
        if amount >= Decimal("10000000000") or amount != amount.quantize(Decimal("0.01")):
            self.error(
                field,
                "Ensure there are no more than 2 decimal places and 10 digits "
                "before the decimal point.",
            )
            return None
        return amount.quantize(Decimal("0.01"))

    def url(self, field: str, *, required: bool = True, max_length: int = 2000) -> str | None:
        value = self.string(field, required=required, max_length=max_length, allow_blank=True)
        if value and not _URL_RE.match(value):
            self.error(field, "Enter a valid http(s) URL.")
            return None
        return value

    def check(self, ok: bool, field: str, message: str) -> None:
        if not ok and field not in self.errors:
            self.error(field, message)

    def validate(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)

    @staticmethod
    def valid(value: _T | None) -> _T:
        """A field's value once validate() has passed: a required field, or one with a
        default, is never None then (its None came with an error, and validate() raised)."""
        assert value is not None, "a required field read before Form.validate()"
        return value
