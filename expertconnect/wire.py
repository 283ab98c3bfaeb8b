"""How values are spelled on the wire: JSON in and out, timestamps as the spec shows them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any, NoReturn


def format_timestamp(value: dt.datetime) -> str:
    """UTC with a Z, to the second, as the spec shows: 2025-03-20T10:00:00Z. The year always has
    four digits (0002-01-07T00:00:00Z): glibc's %Y writes year 2 as "2", which is not ISO 8601."""
    utc = value.astimezone(dt.UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"
    )


def sql_timestamp(expression: str) -> str:
    """format_timestamp in SQL, for statements that write their answer as JSON themselves
    (db/queries' JSON pages): UTC, to the second (to_char truncates, as above), and YYYY is
    never shorter than four digits (year 2 is 0002). NULL stays NULL, which JSON writes as
    null. `expression` is a timestamptz column or expression of the caller's own SQL."""
    return f"""to_char(({expression}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


def sql_float(expression: str) -> str:
    """A float8 as json.dumps writes a Python float (repr: 4.0, not PostgreSQL's 4), as a json
    value for row_to_json to embed; NULL stays NULL. For finite values whose repr has no
    exponent (such as a rating rounded to 2 decimals): both then write the shortest digits."""
    return (
        f"(CASE WHEN ({expression}) = trunc({expression}) THEN ({expression})::text || '.0' "
        f"ELSE ({expression})::text END)::json"
    )


def sql_time_of_day(expression: str) -> str:
    """A time of day as _default below writes it (HH:MM:SS), in SQL; `expression` is a time
    column or expression of the caller's own SQL."""
    return f"to_char({expression}, 'HH24:MI:SS')"


def _default(value: object) -> str:
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


class MalformedJSON(ValueError):
    pass


NOT_A_NUMBER = "NaN and Infinity are not valid JSON numbers"


def _reject_constant(name: str) -> NoReturn:
    raise MalformedJSON(NOT_A_NUMBER)


def loads(raw: bytes) -> Any:
    """Parse a request body strictly: UTF-8 only, no NaN/Infinity, bounded nesting."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJSON("Request body is not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except MalformedJSON:
        raise  # NaN or Infinity; a ValueError too, so it must not reach the clause below
    except RecursionError:
        raise MalformedJSON("Request body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise MalformedJSON(f"Malformed JSON: {exc.msg} at position {exc.pos}") from None
    except ValueError:
        # Python refuses to convert integers of more than 4300 digits (CVE-2020-10735).
        raise MalformedJSON("Request body has a number too long to read") from None
