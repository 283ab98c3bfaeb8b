"""Ids as the database stores them (bigint) and as clients write them in URLs and query
strings: the int64 bound and the one parser for ids written as text."""

from __future__ import annotations

# PostgreSQL's bigint, the type of every id and sequence number.
INT64_MAX = 2**63 - 1
# Decimal digits of INT64_MAX: a longer string is out of range without converting it (int()
# refuses strings of more than 4300 digits with a ValueError anyway).
_MAX_DIGITS = len(str(INT64_MAX))


def parse_id(text: str | None, *, minimum: int = 1) -> int | None:
    """An id written in ASCII decimal digits, minimum..INT64_MAX, else None. No sign, no
    spaces, no other scripts' digits (which int() would accept)."""
    if text is None or not (0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if minimum <= value <= INT64_MAX else None
