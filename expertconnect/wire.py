"""How values are spelled on the wire: JSON in and out, timestamps as the spec shows them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal


def format_timestamp(value: dt.datetime) -> str:
    """UTC with a Z, to the second, as the spec shows: 2025-03-20T10:00:00Z."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _default(value):
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


def dumps(value) -> str:
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


class MalformedJSON(ValueError):
    pass


def _reject_constant(name: str):
    raise MalformedJSON(f"{name} is not valid JSON")


def loads(raw: bytes):
    """Parse a request body strictly: UTF-8 only, no NaN/Infinity, bounded nesting."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJSON("Request body is not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise MalformedJSON("Request body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise MalformedJSON(f"Malformed JSON: {exc.msg} at position {exc.pos}") from None
    except ValueError:
        # Python refuses to convert integers of more than 4300 digits (CVE-2020-10735).
        raise MalformedJSON("Request body has a number too long to read") from None
