"""SQL lives here and nowhere else: one module per table group. Every function takes `conn`
first (a db.Executor: the Database or an asyncpg Connection), runs one statement and returns
Row | None, list[Row], a scalar, or a JsonPage (the `_json` functions); the name says which
(get_, list_, insert_, update_, delete_, count_)."""

from __future__ import annotations

from typing import NamedTuple

from expertconnect import wire
from expertconnect.db import Executor
from expertconnect.ids import INT64_MAX

# The list cursor when the client gives none: every id is below it. A bound rather than NULL
# keeps `id < $n` an index condition in every plan.
NO_CURSOR = INT64_MAX


class JsonPage(NamedTuple):
    """A list as PostgreSQL wrote it, in the JSON the API answers (PostgREST's technique: no
    row becomes a Python object on the way to the client). `body` is the JSON array, `rows`
    its length and `last_id` the id of its last item (None when empty): the next page's
    cursor."""

    body: str
    rows: int
    last_id: int | None


def wire_columns(
    select_list: str, *, timestamps: tuple[str, ...] = (), floats: tuple[str, ...] = ()
) -> str:
    """`select_list` (a module's own column fragment) with each column named in `timestamps`
    (e.g. "m.created_at") or `floats` spelled as the wire spells it (wire.sql_timestamp,
    wire.sql_float), under its own name: the one column list serves both the rows Python reads
    and the JSON SQL writes."""
    columns, depth, start = [], 0, 0
    for i, char in enumerate(select_list):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            columns.append(select_list[start:i].strip())
            start = i + 1
    columns.append(select_list[start:].strip())
    missing = {*timestamps, *floats} - set(columns)
    if missing:
        raise ValueError(f"not plain columns of the select list: {sorted(missing)}")
    spelled = {c: wire.sql_timestamp(c) for c in timestamps}
    spelled.update({c: wire.sql_float(c) for c in floats})
    return ", ".join(
        f"{spelled[c]} AS {c.rpartition('.')[2]}" if c in spelled else c for c in columns
    )


def json_array(*, order_by: str, of: str = "w") -> str:
    """An aggregate expression: the rows of `of` (a subquery of the FROM whose columns are
    exactly the wire fields, in order) as one compact JSON array in the order of `order_by`
    (over any column of the FROM), '[]' when there are none. row_to_json writes "key":value
    with no spaces and escapes strings as wire.dumps does, so the text is the bytes Python
    would have sent."""
    return (
        f"coalesce('[' || string_agg(row_to_json({of})::text, ',' ORDER BY {order_by}) || ']', "
        "'[]')"
    )


def json_page(rows_sql: str) -> str:
    """The statement of a page of `rows_sql`, a newest-first list (by id): one row of the
    JsonPage's body, rows and last_id. An explicit ORDER BY in the aggregate: a sorted
    subquery's order is not a promise to an aggregate."""
    return f"""SELECT {json_array(order_by="w.id DESC")} AS body,
                      count(*)::int AS rows, min(w.id) AS last_id
               FROM ({rows_sql}) w"""


async def fetch_json_page(conn: Executor, statement: str, *args: object) -> JsonPage:
    """Runs a json_page() statement. An aggregate always answers one row; None comes only from
    a connection that does not run the statement (the EXPLAIN of tests/test_query_plans.py)."""
    row = await conn.fetchrow(statement, *args)
    if row is None:
        return JsonPage("[]", 0, None)
    return JsonPage(row["body"], row["rows"], row["last_id"])
